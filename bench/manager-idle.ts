/**
 * The manager bench's memory probe, run as its own process: `node dist/bench/manager-idle.js ELF N
 * [worker]` creates N idle 64 MiB riscv64 VMs with createVm (or, with `worker`, each in a worker thread
 * of its own as the daemon runs them: WorkerVm, no warm pool), starts them, waits until each has printed
 * its first byte, lets them idle, and prints one JSON line: the process's resident set before and after
 * (bytes, /proc/self/status VmRSS) and the guest RAM the VMs actually touched (4 KiB pages that are not
 * all zero; in process only: a worker's RAM is out of reach here, and is the same few pages).
 */
import { readFileSync } from "node:fs";
import { nodeVmHost } from "../src/cli/vm-host.js";
import { vmWorkerEntry } from "../src/cli/vm-worker.js";
import type { ByteSink } from "../src/devices/byte-sink.js";
import { WorkerVm } from "../src/manager/worker-vm.js";
import { createVm } from "../src/vm/create.js";
import type { RiscvVm } from "../src/vm/riscv.js";
import type { Vm } from "../src/vm/vm.js";
import { idleSpec } from "./lib/manager-guest.js";

const PAGE = 4096;

function rss(): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (!m) throw new Error("no VmRSS in /proc/self/status");
  return Number(m[1]) * 1024;
}

/** Pages of `bytes` with any non-zero byte: what the loader and the guest wrote. */
function touchedBytes(bytes: Uint8Array): number {
  const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  let pages = 0;
  for (let p = 0; p < words.length; p += PAGE / 8) {
    for (let i = p; i < p + PAGE / 8; i++) {
      if (words[i] !== 0n) {
        pages++;
        break;
      }
    }
  }
  return pages * PAGE;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const [elf, count] = [process.argv[2] as string, Number(process.argv[3])];
  const inWorkers = process.argv[4] === "worker";
  global.gc?.();
  await settle(200);
  const before = rss();
  const vms: Vm[] = [];
  const started: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    let first: () => void = () => {};
    started.push(new Promise<void>((r) => (first = r)));
    const sink: ByteSink = { writable: true, whenWritable: (go) => setImmediate(go), write: () => first() };
    const spec = idleSpec(`idle${i}`, elf);
    const vm = inWorkers
      ? await WorkerVm.create(spec, { entry: vmWorkerEntry, console: () => first() })
      : await createVm(spec, nodeVmHost({ console: sink }));
    vm.start();
    vms.push(vm);
  }
  await Promise.all(started);
  global.gc?.();
  await settle(1000);
  const after = rss();
  let touched = 0;
  if (!inWorkers) for (const vm of vms) touched += touchedBytes((vm as RiscvVm).board.cpu.ram.bytes);
  process.stdout.write(`${JSON.stringify({ count, before, after, touched })}\n`);
  for (const vm of vms) vm.kill();
  await Promise.allSettled(vms.map((vm) => vm.wait()));
}

await main();
