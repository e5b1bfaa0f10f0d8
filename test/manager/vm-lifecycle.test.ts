/**
 * Many short VMs in one process must leave nothing behind: every per-VM host resource (descriptors,
 * timers, sockets, listeners, buffers, vCPU threads) is released when a VM built by createVm ends. 200 riscv64 VMs with
 * virtio devices on host backends (a disk file, entropy, a console on a host stream, the balloon's page
 * reclaimer, a switch port, a vsock Unix socket), and, where /dev/kvm opens, x86 KVM VMs: afterwards the
 * process has exactly the descriptors it started with, and its RSS is back near where it started.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BufferedOutput } from "../../src/cli/terminal.js";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { SwitchRegistry } from "../../src/net/switch.js";
import { createVm } from "../../src/vm/create.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { floodGuest, toolchainMissing } from "../guest-console/build.js";
import { guest, guestImages, kvmUnavailable } from "../kvm/support.js";
import { describe, test } from "../support/test.js";

const MiB = 2 ** 20;
const RISCV_VMS = 200;
const KVM_VMS = 20;
/** VMs run before the baseline is taken: lazily built things (the wasm module, imports) are not leaks. */
const WARM_UP = 20;
const RSS_GROWTH_BOUND = 64 * MiB;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Active handles and requests (timers, sockets, servers...), by kind, sorted: what keeps the loop alive. */
function activeResources(): string {
  return process.getActiveResourcesInfo().sort().join(",");
}

/** Listeners on the process and on the console stream the VMs share. */
function listeners(): string {
  const on = (e: NodeJS.EventEmitter) => e.eventNames().map((n) => `${String(n)}:${e.listenerCount(n)}`);
  return [...on(process), "|", ...on(stream)].join(",");
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

async function settledRss(): Promise<number> {
  // Let closes and worker exits finish, then collect what the VMs left for the collector.
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return process.memoryUsage().rss;
}

/** A sink on a host stream that discards, so the console path (BufferedOutput + listeners) is exercised. */
function discardingStream(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

const dir = mkdtempSync(join(tmpdir(), "vireo-lifecycle-"));
const disk = join(dir, "disk.img");
writeFileSync(disk, new Uint8Array(MiB));
const stream = discardingStream();
// Asks the VMs to wait now and then, so the console's 'drain' path is taken too.
let writes = 0;
const slowStream = new Writable({
  highWaterMark: 1,
  write(_chunk, _encoding, callback) {
    if (++writes % 2 === 0) setImmediate(callback);
    else callback();
  },
});
const switches = new SwitchRegistry();

/** The parts every VM here has: a disk file, entropy, a console on a host stream, the balloon. */
function spec(name: string, arch: VmSpec["arch"], kernel: string): VmSpec {
  return {
    name,
    arch,
    engine: "auto",
    cpus: arch === "riscv64" ? 1 : 2,
    memory: 16 * MiB,
    boot: { kernel },
    drives: [{ path: disk, readOnly: true, id: "d" }],
    nics: [],
    rng: true,
    console: true,
    balloon: {},
    virtioRing: "packed",
  };
}

/** Odd VMs print 16 KiB into a stream that keeps asking them to wait; even ones power off at once. */
async function riscvVm(kernels: string[], i: number): Promise<void> {
  const output = new BufferedOutput(i % 2 === 0 ? stream : slowStream);
  try {
    const vm = await createVm(
      {
        ...spec(`riscv${i}`, "riscv64", kernels[i % 2] as string),
        boot: { kernel: kernels[i % 2] as string, firmware: "none" },
        // Also a switch port and a vsock Unix socket.
        nics: [{ backend: "switch:lifecycle" }],
        vsock: { cid: 3, uds: join(dir, "vsock.sock") },
        // The limit only guards against a guest that never stops; a stalled guest polls LSR meanwhile.
        maxInstructions: 2_000_000_000,
      },
      nodeVmHost({ console: output, switches }),
    );
    vm.start();
    assert.deepEqual(await vm.wait(), { reason: "exit", code: 0, reboot: false });
  } finally {
    output.close();
  }
}

async function kvmVm(): Promise<void> {
  const output = new BufferedOutput(stream);
  try {
    const vm = await createVm(
      { ...spec("kvm", "x86_64", guest("poweroff")), boot: { kernel: guest("poweroff"), cmdline: "" } },
      nodeVmHost({ console: output }),
    );
    vm.start();
    assert.deepEqual(await vm.wait(), { reason: "poweroff" });
  } finally {
    output.close();
  }
}

const why = toolchainMissing() ?? (process.platform !== "linux" ? "needs /proc (Linux)" : undefined);
if (why !== undefined) console.log(`# skipping VM lifecycle test: ${why}`);
const kvmWhy =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (kvmWhy !== undefined) console.log(`# skipping the KVM part of the VM lifecycle test: ${kvmWhy}`);

describe("per-VM host resources", { skip: why }, () => {
  test(`${RISCV_VMS} riscv64 VMs release every descriptor and their memory`, {
    timeout: 300_000,
  }, async () => {
    const kernels = [0, 16 * 1024].map((n) => floodGuest(n));
    for (let i = 0; i < WARM_UP; i++) await riscvVm(kernels, i);
    const fds = openFds();
    const rss = await settledRss();
    const resources = activeResources();
    const listening = listeners();
    for (let i = 0; i < RISCV_VMS; i++) await riscvVm(kernels, i);
    const fdsAfter = openFds();
    const rssAfter = await settledRss();
    assert.equal(activeResources(), resources, "active handles (timers, sockets, servers)");
    assert.equal(listeners(), listening, "process and stream listeners");
    assert.ok(writes >= RISCV_VMS * 2, `the slow stream saw ${writes} writes`);
    console.log(
      `# riscv64: fds ${fds} -> ${fdsAfter}, RSS ${(rss / MiB).toFixed(1)} -> ${(rssAfter / MiB).toFixed(1)} MiB after ${RISCV_VMS} VMs`,
    );
    assert.equal(fdsAfter, fds, "open descriptors");
    assert.ok(rssAfter - rss < RSS_GROWTH_BOUND, `RSS grew by ${rssAfter - rss} bytes`);
  });

  test(`${KVM_VMS} x86 KVM VMs release every descriptor, thread and their memory`, {
    skip: kvmWhy,
    timeout: 300_000,
  }, async () => {
    for (let i = 0; i < 2; i++) await kvmVm();
    const fds = openFds();
    const rss = await settledRss();
    const resources = activeResources();
    const listening = listeners();
    for (let i = 0; i < KVM_VMS; i++) await kvmVm();
    const fdsAfter = openFds();
    const rssAfter = await settledRss();
    assert.equal(activeResources(), resources, "active handles (timers, sockets, servers, workers)");
    assert.equal(listeners(), listening, "process and stream listeners");
    console.log(
      `# kvm: fds ${fds} -> ${fdsAfter}, RSS ${(rss / MiB).toFixed(1)} -> ${(rssAfter / MiB).toFixed(1)} MiB after ${KVM_VMS} VMs`,
    );
    assert.equal(fdsAfter, fds, "open descriptors");
    assert.ok(rssAfter - rss < RSS_GROWTH_BOUND, `RSS grew by ${rssAfter - rss} bytes`);
  });

  test("clean up", { timeout: 10_000 }, () => {
    rmSync(dir, { recursive: true, force: true });
  });
});
