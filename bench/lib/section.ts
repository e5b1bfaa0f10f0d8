/** What every benchmark section (CPU, later Linux boot, virtio throughput, …) provides to bench/run.ts. */

export interface BenchOptions {
  /** Repetitions per measured configuration (medians are taken over these). */
  runs: number;
  /** Wall-clock limit for one run of anything, in milliseconds. */
  timeoutMs: number;
  /** Skip the QEMU reference runs. */
  noQemu: boolean;
}

/** How a section ended: "ok", "failed" (some run failed or gave a wrong result) or "skipped" (tools missing). */
export type SectionOutcome = "ok" | "failed" | "skipped";

export interface BenchSection {
  /** The name given on the command line: `node dist/bench/run.js <name>`. */
  name: string;
  /** Heading of its part of the report and of docs/BENCHMARKS.md. */
  title: string;
  run(options: BenchOptions): Promise<SectionOutcome>;
}
