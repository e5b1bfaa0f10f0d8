/**
 * Benchmark runner: `npm run bench` (all sections) or `node dist/bench/run.js <section>...`.
 * Each section lives in its own module and is listed in SECTIONS; see docs/BENCHMARKS.md for method.
 *
 * Exit status: 0 when every selected section ran (or was skipped for a missing tool), 1 when a run failed
 * or printed a wrong result, 2 for bad arguments.
 */
import { agentSection } from "./agent.js";
import { bootSection } from "./boot.js";
import { browserSection } from "./browser.js";
import { cpuSection } from "./cpu.js";
import { kvmSection } from "./kvm.js";
import { machineInfo } from "./lib/machine.js";
import type { BenchOptions, BenchSection } from "./lib/section.js";
import { managerSection } from "./manager.js";
import { schedulerSection } from "./scheduler.js";
import { snapshotSection } from "./snapshot.js";
import { virtioSection } from "./virtio.js";

const SECTIONS: readonly BenchSection[] = [
  cpuSection,
  bootSection,
  virtioSection,
  kvmSection,
  managerSection,
  schedulerSection,
  snapshotSection,
  browserSection,
  agentSection,
];

const USAGE = `usage: node dist/bench/run.js [section...] [--runs N] [--timeout SECONDS] [--no-qemu]
sections: ${SECTIONS.map((s) => `${s.name} (${s.title})`).join(", ")}; default: all
  --runs N           repetitions per configuration, medians over these (default 5)
  --timeout SECONDS  limit for one run (default 300)
  --no-qemu          skip the QEMU reference runs`;

function parseArgs(argv: readonly string[]): { sections: BenchSection[]; options: BenchOptions } | string {
  const options: BenchOptions = { runs: 5, timeoutMs: 300_000, noQemu: false };
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${arg} needs a positive number`);
      return v;
    };
    try {
      if (arg === "--runs") options.runs = Math.floor(value());
      else if (arg === "--timeout") options.timeoutMs = value() * 1000;
      else if (arg === "--no-qemu") options.noQemu = true;
      else if (arg === "--help" || arg === "-h") return USAGE;
      else if (arg.startsWith("-")) return `unknown option ${arg}\n${USAGE}`;
      else names.push(arg);
    } catch (e) {
      return `${(e as Error).message}\n${USAGE}`;
    }
  }
  const unknown = names.filter((n) => !SECTIONS.some((s) => s.name === n));
  if (unknown.length > 0) return `unknown section ${unknown.join(", ")}\n${USAGE}`;
  const sections = names.length === 0 ? [...SECTIONS] : SECTIONS.filter((s) => names.includes(s.name));
  return { sections, options };
}

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2));
  if (typeof parsed === "string") {
    const help = parsed === USAGE;
    (help ? console.log : console.error)(parsed);
    return help ? 0 : 2;
  }
  console.log("# Vireo benchmarks");
  for (const line of machineInfo()) console.log(line);
  console.log(`method: median of ${parsed.options.runs} run(s) per configuration, wall clock`);
  let failed = false;
  for (const section of parsed.sections) {
    console.log(`\n## ${section.title}\n`);
    const outcome = await section.run(parsed.options);
    if (outcome === "failed") failed = true;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
