/**
 * riscv64 VMs with `switch:` NICs in worker threads: the switch stays in the daemon's thread (this
 * one), each worker NIC reaches it through a bounded frame link. The guest is test/net/chatter.c
 * (broadcasts on its NIC for ever, counting what it receives). Two worker VMs on one switch exchange
 * frames; killing one, its worker dying, or its VM failing to build unplugs its switch port and leaves
 * the other running; a flood toward a paused VM is dropped and counted while this process's memory
 * stays put, and the flooder's NIC counters match what its switch port took.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { FAULT_LABEL, VmManager } from "../../src/manager/manager.js";
import { WorkerVm } from "../../src/manager/worker-vm.js";
import { parseMac } from "../../src/net/mac.js";
import { SwitchRegistry } from "../../src/net/switch.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { sleep, tempDir, toolchainMissing, until } from "../api/support.js";
import { bareMetalSpec, repoRoot } from "../support/bare-metal.js";
import { after, describe, test } from "../support/test.js";

const MiB = 2 ** 20;
/** Generous for 64-byte frames, tiny against what an unbounded queue under a flood would reach. */
const RSS_GROWTH_BOUND = 96 * MiB;

const missing = toolchainMissing();
if (missing !== undefined) process.stderr.write(`skipping the worker networking tests: ${missing}\n`);

/** Builds test/net/chatter.c sending one frame every `periodUs` µs (0: as fast as it can). */
function chatter(dir: string, periodUs: number): string {
  const elf = join(dir, `chatter-${periodUs}.elf`);
  const r = spawnSync(
    "riscv64-unknown-elf-gcc",
    [
      ...["-O2", "-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-nostdlib", "-ffreestanding"],
      ...["-fno-builtin", "-fno-tree-loop-distribute-patterns", "-static", "-nostartfiles"],
      ...["-Wall", "-Werror", "-Wl,--no-warn-rwx-segments", `-DPERIOD_US=${periodUs}`],
      ...["-T", join(repoRoot, "test", "guest-fuzz", "link.ld"), "-o", elf],
      join(repoRoot, "test", "net", "chatter.c"),
      "-lgcc",
    ],
    { encoding: "utf8" },
  );
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`building chatter.c failed:\n${r.stdout}${r.stderr}`);
  return elf;
}

type Counters = Record<string, number>;

describe("worker VMs on a daemon switch", { skip: missing !== undefined }, () => {
  const switches = new SwitchRegistry();
  const logs: string[] = [];
  let manager: VmManager | null = null;
  after(() => manager?.shutdown(0));

  const nic = (name: string): Counters => {
    const n = manager?.stats(name).nics[0];
    assert.ok(n !== undefined, `VM '${name}' has no NIC stats`);
    return n.counters;
  };
  const define = (name: string, kernel: string, mac: string, extra: Partial<VmSpec> = {}) =>
    manager?.create(
      bareMetalSpec(name, kernel, 16 * MiB, { nics: [{ backend: "switch:lan", mac }], ...extra }),
    );

  test("exchange frames; a killed VM and a dead worker each free their port; a flood is bounded", {
    timeout: 180_000,
  }, async (t) => {
    const dir = tempDir();
    const paced = chatter(dir, 1000);
    const flood = chatter(dir, 0);
    manager = await VmManager.open({
      stateDir: null,
      log: (m) => logs.push(m),
      testHooks: true,
      host: (console) => nodeVmHost({ console, switches }),
      vmWorker: vmWorkerEntry,
    });
    const sw = switches.get("lan");
    // A worker whose VM cannot be built gives its port back at once.
    const broken = bareMetalSpec("broken", "/nonexistent/kernel", 16 * MiB, {
      nics: [{ backend: "switch:lan" }],
    });
    await assert.rejects(
      WorkerVm.create(broken, {
        entry: vmWorkerEntry,
        console: () => {},
        netBackend: (backend) => switches.get(backend.slice("switch:".length)).connect(),
      }),
      /nonexistent/,
    );
    assert.equal(sw.ports.length, 0);
    await assert.rejects(WorkerVm.create(broken, { entry: vmWorkerEntry, console: () => {} }), /netBackend/);
    const macA = parseMac("52:54:00:00:00:0a") as Uint8Array;
    const macB = parseMac("52:54:00:00:00:0b") as Uint8Array;
    define("a", paced, "52:54:00:00:00:0a");
    define("b", paced, "52:54:00:00:00:0b");
    await manager.act("a", "start");
    await manager.act("b", "start");
    assert.equal(sw.ports.length, 2, "each worker NIC has a port on the daemon's switch");

    // Both send and both receive the other's broadcasts through the daemon's switch.
    await until(
      async () => [nic("a"), nic("b")],
      ([a, b]) => (a?.rxFrames ?? 0) >= 50 && (b?.rxFrames ?? 0) >= 50,
    );
    for (const name of ["a", "b"]) {
      const c = nic(name);
      // Only a worker VM's NIC has link counters: these VMs are not in this thread.
      assert.ok("txLinkDropped" in c && "rxLinkDropped" in c, JSON.stringify(c));
      assert.equal(c.txMalformed, 0);
      assert.equal(c.rxMalformed, 0);
    }
    assert.ok(sw.lookup(macA) !== null && sw.lookup(macB) !== null, "the switch learned both stations");
    assert.equal(sw.lookup(macA) === sw.lookup(macB), false);
    t.diagnostic(`paced: a ${JSON.stringify(nic("a"))}, b ${JSON.stringify(nic("b"))}`);

    // Killing A unplugs its port; B runs on, still sending.
    const portA = sw.lookup(macA);
    await manager.act("a", "kill");
    assert.equal(manager.get("a").state, "stopped");
    await until(
      async () => sw.ports.length,
      (n) => n === 1,
    );
    assert.equal(portA?.isConnected, false);
    assert.equal(sw.lookup(macA), null, "A's address is forgotten with its port");
    const sentB = nic("b").txFrames ?? 0;
    await until(
      async () => nic("b").txFrames ?? 0,
      (n) => n > sentB + 20,
    );
    assert.equal(manager.get("b").state, "running");

    // A worker that dies (the fault hook exits it after 64 console bytes) frees its port too.
    define("dies", paced, "52:54:00:00:00:0d", { labels: { [FAULT_LABEL]: "exit" } });
    await manager.act("dies", "start");
    const died = await until(
      async () => manager?.get("dies"),
      (v) => v?.state !== "running",
    );
    assert.equal(died?.state, "failed");
    await until(
      async () => sw.ports.length,
      (n) => n === 1,
    );
    assert.equal(manager.get("b").state, "running");

    // A flood toward B while B is paused: its worker keeps taking frames off the link, its NIC's
    // backlog fills and drops them; whatever the link cannot carry is dropped and counted too.
    await manager.act("b", "pause");
    define("flood", flood, "52:54:00:00:00:0f");
    await manager.act("flood", "start");
    await until(
      async () => nic("flood").txFrames ?? 0,
      (n) => n > 1000,
    );
    const rssBefore = process.memoryUsage().rss;
    const txBefore = nic("flood").txFrames ?? 0;
    const port = sw.lookup(parseMac("52:54:00:00:00:0f") as Uint8Array);
    const inBefore = port?.counters.inFrames ?? 0;
    const started = performance.now();
    await sleep(3000);
    const seconds = (performance.now() - started) / 1000;
    const f = nic("flood");
    const b = nic("b");
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    const dropped = (f.txLinkDropped ?? 0) + (b.rxLinkDropped ?? 0) + (b.rxBacklogFull ?? 0);
    const carriedPerSecond = ((port?.counters.inFrames ?? 0) - inBefore) / seconds;
    t.diagnostic(
      `flood: ${(((f.txFrames ?? 0) - txBefore) / seconds).toFixed(0)} frames/s sent over ${seconds.toFixed(1)} s; ` +
        `flood NIC ${JSON.stringify(f)}; paused b NIC ${JSON.stringify(b)}; ` +
        `the switch took ${carriedPerSecond.toFixed(0)} frames/s from it; rss growth ${(rssGrowth / MiB).toFixed(1)} MiB`,
    );
    assert.ok(dropped > 0, "a flood into a paused VM drops frames, and they are counted");
    assert.ok(rssGrowth < RSS_GROWTH_BOUND, `rss grew ${(rssGrowth / MiB).toFixed(1)} MiB`);
    // Paused (the answer waits for a snapshot taken after the pause), the flood's NIC counters are
    // final: once its last frames have crossed, every frame its link took reached the switch.
    await manager.act("flood", "pause");
    const final = nic("flood");
    const carried = (final.txFrames ?? 0) - (final.txLinkDropped ?? 0);
    for (let i = 0; i < 200 && port?.counters.inFrames !== carried; i++) await sleep(50);
    assert.equal(port?.counters.inFrames, carried, JSON.stringify(final));
    assert.equal(port?.counters.inErrors, 0);
    await manager.act("b", "resume");
    await manager.act("flood", "kill");
    await manager.act("b", "kill");
    await until(
      async () => sw.ports.length,
      (n) => n === 0,
    );
  });
});
