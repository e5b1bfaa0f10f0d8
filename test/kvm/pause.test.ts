/**
 * Pausing KVM vCPUs (test/guest-x86/count.S: a counter in guest RAM, a local and a forwarded port exit
 * per iteration): while paused the counter and every exit counter stay exactly where they were; resumed,
 * the counter moves again; many pauses in a row; the kvmclock does not count a pause; a kill while paused
 * ends the VM with no further KVM_RUN. Two vCPUs: the second sits inside KVM_RUN waiting for a SIPI that
 * never comes, so a pause must kick it out too. Then Ctrl-Alt-Del through the i8042 (test/guest-x86/kbd.S
 * polls ports 0x64/0x60 and prints what it reads) and through the Vm's stop(), which presses it.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import type { ByteSink } from "../../src/devices/byte-sink.js";
import { KvmEngine } from "../../src/engines/kvm/engine.js";
import { X86MicroVm } from "../../src/machine/x86-microvm/board.js";
import { parseBzImage } from "../../src/machine/x86-microvm/bzimage.js";
import { createVm } from "../../src/vm/create.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { describe, test } from "../support/test.js";
import { guest, guestImages, kvmUnavailable } from "./support.js";

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (why !== undefined) console.log(`# skipping KVM pause tests: ${why}`);

const MiB = 2 ** 20;
/** Where count.S keeps its counter. */
const COUNTER = 0x300000;
/** What Linux's atkbd reads behind a translating i8042 for Ctrl-Alt-Del pressed and released (set 1). */
const CTRL_ALT_DEL_SET1 = "1d 38 e0 53 e0 d3 b8 9d \n";

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function boot(name: string, cpus: number) {
  let text = "";
  const board = X86MicroVm.create({
    memory: 64 * MiB,
    cpus,
    console: {
      write(byte) {
        text += String.fromCharCode(byte);
      },
    },
  });
  const path = guest(name);
  board.loadLinux(parseBzImage(readFileSync(path), path), null, "");
  const engine = new KvmEngine(board);
  const memory = board.ram.memoryAt(COUNTER, 8);
  assert.ok(memory !== undefined);
  const view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, memory.bytes.byteLength);
  return {
    board,
    engine,
    output: () => text,
    counter: () => view.getBigUint64(COUNTER - memory.base, true),
  };
}

/** Resolves once `f` holds, looking at every turn of the event loop (the test's timeout bounds it). */
async function until(f: () => boolean): Promise<void> {
  while (!f()) await sleep(5);
}

describe("KVM pause/resume", { skip: why }, () => {
  test("a paused VM stands still, resumes, pauses many times, and a kill while paused ends it", {
    timeout: 120_000,
  }, async () => {
    const vm = boot("count", 2);
    const running = vm.engine.run();
    try {
      await until(() => vm.output() === "counting\n" && vm.counter() > 0n);

      vm.engine.pause();
      const counter = vm.counter();
      const counters = vm.engine.counters();
      // Each iteration of the guest forwards an exit: had one been left pending, the counter would be
      // stuck but the guest not parked; the worker's parked word says it left KVM_RUN for good.
      await sleep(200);
      assert.equal(vm.counter(), counter, "the guest counted while paused");
      assert.deepEqual(vm.engine.counters(), counters, "a vCPU exited while paused");
      assert.ok((counters[0]?.forwarded ?? 0) > 0 && (counters[0]?.localPio ?? 0) > 0);

      vm.engine.resume();
      await until(() => vm.counter() > counter);

      const rounds = 50;
      for (let i = 0; i < rounds; i++) {
        vm.engine.pause();
        const c = vm.counter();
        const exits = vm.engine.counters();
        await sleep(i % 2 === 0 ? 0 : 10);
        assert.equal(vm.counter(), c, `round ${i}: the guest counted while paused`);
        assert.deepEqual(vm.engine.counters(), exits, `round ${i}: a vCPU exited while paused`);
        vm.engine.resume();
        if (i % 10 === 0) await until(() => vm.counter() > c);
      }
      const before = vm.counter();
      await until(() => vm.counter() > before);
      console.log(`# ${rounds} pause/resume rounds; counter ${vm.counter()}`);

      vm.engine.pause();
      const finalCounters = vm.engine.counters();
      const finalCounter = vm.counter();
      vm.engine.stop();
      assert.deepEqual(await running, { reason: "stopped" });
      assert.equal(vm.counter(), finalCounter);
      assert.deepEqual(vm.engine.counters(), finalCounters, "a vCPU ran again after a kill while paused");
    } finally {
      vm.engine.stop();
      await running.catch(() => {});
      vm.board.close();
    }
  });

  test("a VM killed while paused leaves no descriptor, thread or handle behind", {
    timeout: 60_000,
  }, async () => {
    const fds = () => readdirSync("/proc/self/fd").length;
    const resources = () => process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length;
    // The test before has warmed up whatever the process keeps (libc bindings, the worker script).
    const before = { fds: fds(), resources: resources() };
    const vm = boot("count", 2);
    const running = vm.engine.run();
    await until(() => vm.counter() > 0n);
    vm.engine.pause();
    vm.engine.stop();
    assert.deepEqual(await running, { reason: "stopped" });
    vm.board.close();
    await sleep(0);
    assert.deepEqual({ fds: fds(), resources: resources() }, before);
  });

  test("the kvmclock does not count the time a VM is paused", { timeout: 60_000 }, async (t) => {
    const vm = boot("count", 1);
    const running = vm.engine.run();
    try {
      await until(() => vm.counter() > 0n);
      let before: bigint;
      try {
        before = vm.board.vm.getClock();
      } catch (e) {
        t.skip(`KVM_GET_CLOCK fails here: ${(e as Error).message}`);
        return;
      }
      vm.engine.pause();
      const atPause = vm.board.vm.getClock();
      assert.ok(atPause >= before);
      const pausedFrom = performance.now();
      await sleep(300);
      const pausedMs = performance.now() - pausedFrom;
      vm.engine.resume();
      const advance = Number(vm.board.vm.getClock() - atPause) / 1e6;
      console.log(`# paused ${pausedMs.toFixed(1)} ms; the kvmclock moved ${advance.toFixed(3)} ms`);
      // Without KVM_SET_CLOCK on resume the clock would have moved by at least the pause itself.
      assert.ok(advance >= 0 && advance < pausedMs, `${advance} ms of a ${pausedMs} ms pause`);
    } finally {
      vm.engine.stop();
      await running.catch(() => {});
      vm.board.close();
    }
  });

  test("the guest reads Ctrl-Alt-Del from the i8042 as set 1 scan codes", { timeout: 60_000 }, async () => {
    const vm = boot("kbd", 1);
    const running = vm.engine.run();
    try {
      await until(() => vm.output() === "keyboard\n");
      vm.board.i8042.pressCtrlAltDel();
      assert.deepEqual(await running, { reason: "reboot" });
      assert.equal(vm.output(), `keyboard\n${CTRL_ALT_DEL_SET1}`);
    } finally {
      vm.engine.stop();
      await running.catch(() => {});
      vm.board.close();
    }
  });

  test("Vm: pause/resume states, and stop() asks the guest with Ctrl-Alt-Del first", {
    timeout: 60_000,
  }, async () => {
    let text = "";
    const sink: ByteSink = {
      writable: true,
      whenWritable: (resume) => setImmediate(resume),
      write(byte) {
        text += String.fromCharCode(byte);
      },
    };
    const kernel = guest("kbd");
    const spec: VmSpec = {
      name: "kbd",
      arch: "x86_64",
      engine: "auto",
      cpus: 1,
      memory: 64 * MiB,
      boot: { kernel },
      drives: [],
      nics: [],
      rng: false,
      console: false,
      virtioRing: "packed",
    };
    const vm = await createVm(spec, nodeVmHost({ console: sink }));
    const states: string[] = [];
    vm.on("state", (s) => states.push(s.name));
    vm.start();
    await until(() => text === "keyboard\n");
    vm.pause();
    vm.resume();
    // The guest ends itself (an i8042 reset) once it has read the chord, long before this grace period.
    const exit = await vm.stop({ graceMs: 60_000 });
    assert.deepEqual(exit, { reason: "reboot" });
    assert.equal(text, `keyboard\n${CTRL_ALT_DEL_SET1}`);
    assert.deepEqual(states, ["running", "paused", "running", "stopped"]);
  });
});
