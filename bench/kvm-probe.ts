/**
 * In-process measurements for the KVM benchmark (bench/kvm.ts runs this as a child process, so each
 * measurement starts from a fresh Node process). Prints one JSON object per line on stdout.
 *
 *   node dist/bench/kvm-probe.js lifecycle <pvh.elf> <n>
 *     n times in a row: create an X86MicroVm (64 MiB, 1 vCPU), load the PVH guest, run it to its end,
 *     close it. Per VM: {"create","load","firstRun","firstExit","firstOutput","end","close"} in ms
 *     from the start of create (firstRun/firstExit from the engine's counters).
 *   node dist/bench/kvm-probe.js memory <touch-pvh.elf> <pages> <vms> <memoryMiB>
 *     {"phase":"baseline"} with this process's memory once the modules are loaded, then for each of
 *     `vms` VMs, started one after another and all kept running: create, load the guest with `pages`,
 *     wait for its "touched" line, {"phase":"vm","index":i,...} with the memory figures; then stops all.
 */
import { readFileSync } from "node:fs";
import { KvmEngine } from "../src/engines/kvm/engine.js";
import { X86MicroVm } from "../src/machine/x86-microvm/board.js";
import { parsePvhKernel } from "../src/machine/x86-microvm/pvh.js";

const MiB = 2 ** 20;

/** VmRSS, RssAnon, RssFile and VmHWM of this process in KiB (/proc/self/status). */
function memoryKiB(): Record<string, number> {
  const text = readFileSync("/proc/self/status", "utf8");
  const out: Record<string, number> = {};
  for (const key of ["VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"]) {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text);
    if (m) out[key] = Number(m[1]);
  }
  return out;
}

/** A console that records when its first byte came and resolves once `want` has been written. */
class Console {
  firstByte = 0;
  private text = "";
  private waiters: { want: string; resolve: () => void }[] = [];
  write(byte: number): void {
    if (this.firstByte === 0) this.firstByte = performance.now();
    this.text += String.fromCharCode(byte);
    this.waiters = this.waiters.filter((w) => {
      if (!this.text.includes(w.want)) return true;
      w.resolve();
      return false;
    });
  }
  waitFor(want: string): Promise<void> {
    if (this.text.includes(want)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ want, resolve }));
  }
}

function params(bytes: number[]): Uint8Array {
  return new Uint8Array(bytes);
}

async function lifecycle(elf: string, n: number): Promise<void> {
  const kernel = parsePvhKernel(readFileSync(elf), elf);
  // pio-pvh with count 0: prints "pio done" at once and resets.
  const initrd = params([0x80, 0, 0, 0, 0, 0, 0, 0]);
  for (let i = 0; i < n; i++) {
    const console = new Console();
    const t0 = performance.now();
    const origin = performance.timeOrigin + t0;
    const board = X86MicroVm.create({ memory: 64 * MiB, cpus: 1, console });
    const t1 = performance.now();
    board.loadPvh(kernel, initrd, "");
    const t2 = performance.now();
    const engine = new KvmEngine(board);
    const result = await engine.run();
    const t3 = performance.now();
    const counters = engine.counters()[0];
    board.close();
    const t4 = performance.now();
    const rel = (abs: number | undefined) => (abs === undefined || abs === 0 ? null : abs - origin);
    process.stdout.write(
      `${JSON.stringify({
        reason: result.reason,
        create: t1 - t0,
        load: t2 - t0,
        firstRun: rel(counters?.firstRunTime),
        firstExit: rel(counters?.firstExitTime),
        firstOutput: console.firstByte === 0 ? null : console.firstByte - t0,
        end: t3 - t0,
        close: t4 - t0,
      })}\n`,
    );
  }
}

async function memory(elf: string, pages: number, vms: number, memoryMiB: number): Promise<void> {
  const kernel = parsePvhKernel(readFileSync(elf), elf);
  const initrd = new Uint8Array(4);
  new DataView(initrd.buffer).setUint32(0, pages, true);
  process.stdout.write(`${JSON.stringify({ phase: "baseline", ...memoryKiB() })}\n`);
  const running: { board: X86MicroVm; engine: KvmEngine; done: Promise<unknown> }[] = [];
  try {
    for (let i = 0; i < vms; i++) {
      const console = new Console();
      const board = X86MicroVm.create({ memory: memoryMiB * MiB, cpus: 1, console });
      board.loadPvh(kernel, initrd, "");
      const engine = new KvmEngine(board);
      const done = engine.run();
      running.push({ board, engine, done });
      await Promise.race([console.waitFor("touched\n"), done]);
      // Let the worker's and the event loop's allocations settle before reading.
      await new Promise((r) => setTimeout(r, 200));
      process.stdout.write(`${JSON.stringify({ phase: "vm", index: i + 1, pages, ...memoryKiB() })}\n`);
    }
  } finally {
    for (const r of running) r.engine.stop();
    for (const r of running) {
      await r.done;
      r.board.close();
    }
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "lifecycle") await lifecycle(rest[0] as string, Number(rest[1] ?? 1));
else if (mode === "memory")
  await memory(rest[0] as string, Number(rest[1]), Number(rest[2] ?? 1), Number(rest[3] ?? 128));
else {
  process.stderr.write(
    "usage: kvm-probe.js lifecycle <pvh.elf> <n> | memory <touch.elf> <pages> <vms> <MiB>\n",
  );
  process.exitCode = 2;
}
