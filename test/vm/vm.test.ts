/**
 * createVm end to end on small guests: riscv64 bare-metal programs on the interpreter, and x86_64 test
 * guests on KVM where /dev/kvm opens. Console output goes to sinks the test holds, so a sink that says
 * "full" keeps a guest busy-waiting for as long as the test needs it running.
 */
import assert from "node:assert/strict";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import type { ByteSink } from "../../src/devices/byte-sink.js";
import { createVm } from "../../src/vm/create.js";
import type { VmSpec } from "../../src/vm/spec.js";
import type { Vm, VmStateName } from "../../src/vm/vm.js";
import { floodGuest, toolchainMissing } from "../guest-console/build.js";
import { guest, guestImages, kvmUnavailable } from "../kvm/support.js";
import { describe, test } from "../support/test.js";

const MiB = 2 ** 20;

/** Collects bytes; `hold()` makes it report full until `release()`. */
class TestSink implements ByteSink {
  readonly bytes: number[] = [];
  private held = false;
  private waiters: (() => void)[] = [];
  private arrived: (() => void) | null = null;
  private want = 0;
  /** Turn full once this many bytes have arrived (inside the guest's own write, so it cannot run on). */
  holdAt = Number.POSITIVE_INFINITY;
  get writable(): boolean {
    return !this.held;
  }
  whenWritable(resume: () => void): void {
    this.waiters.push(resume);
    if (!this.held) this.release();
  }
  write(byte: number): void {
    this.bytes.push(byte);
    if (this.bytes.length >= this.holdAt) this.held = true;
    if (this.bytes.length >= this.want) this.arrived?.();
  }
  hold(): void {
    this.held = true;
  }
  release(): void {
    this.held = false;
    const waiters = this.waiters;
    this.waiters = [];
    setImmediate(() => {
      for (const w of waiters) w();
    });
  }
  /** Resolves once at least `n` bytes have arrived. */
  until(n: number): Promise<void> {
    this.want = n;
    if (this.bytes.length >= n) return Promise.resolve();
    return new Promise((resolve) => {
      this.arrived = resolve;
    });
  }
  text(): string {
    return String.fromCharCode(...this.bytes);
  }
}

function states(vm: Vm): VmStateName[] {
  const seen: VmStateName[] = [];
  vm.on("state", (s) => seen.push(s.name));
  return seen;
}

/** What flood.S prints: byte i is i mod 251. */
const flood = (n: number) => Array.from({ length: n }, (_, i) => i % 251);

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

function riscvSpec(name: string, kernel: string, extra: Partial<VmSpec> = {}): VmSpec {
  return {
    name,
    arch: "riscv64",
    engine: "auto",
    cpus: 1,
    memory: 16 * MiB,
    boot: { kernel, firmware: "none" },
    drives: [],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "packed",
    ...extra,
  };
}

const noToolchain = toolchainMissing();
if (noToolchain) process.stderr.write(`skipping riscv64 VM tests: ${noToolchain}\n`);

describe("createVm riscv64", { skip: noToolchain }, () => {
  test("start, output, pause holds the instruction count, resume, stats, devices, state order", {
    timeout: 120_000,
  }, async () => {
    const total = 4000;
    const sink = new TestSink();
    const vm = await createVm(
      riscvSpec("flood", floodGuest(total), { rng: true, balloon: {} }),
      nodeVmHost({ console: sink }),
    );
    const seen = states(vm);
    assert.equal(vm.state.name, "created");
    const names = vm.devices().map((d) => `${d.name}:${d.kind}`);
    for (const want of ["uart0:uart16550", "plic:plic", "virtio0:virtio-rng", "virtio1:virtio-balloon"]) {
      assert.ok(names.includes(want), `${want} in ${names.join(" ")}`);
    }
    sink.holdAt = 100;
    vm.start();
    await sink.until(100);
    vm.pause();
    assert.equal(vm.state.name, "paused");
    const before = vm.stats().instructions;
    const bytesBefore = sink.bytes.length;
    sink.holdAt = Number.POSITIVE_INFINITY;
    sink.release();
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(vm.stats().instructions, before, "instructions retired while paused");
    assert.equal(sink.bytes.length, bytesBefore, "output while paused");
    assert.throws(() => vm.pause(), /paused/);
    vm.resume();
    const exit = await vm.wait();
    assert.deepEqual(exit, { reason: "exit", code: 0, reboot: false });
    assert.equal(sink.bytes.length, total);
    assert.deepEqual(sink.bytes, flood(total));
    const stats = vm.stats();
    assert.ok((stats.instructions ?? 0) > (before ?? 0));
    assert.equal(stats.arch, "riscv64");
    assert.ok(stats.balloon !== undefined);
    assert.deepEqual(seen, ["running", "paused", "running", "stopped"]);
    assert.throws(() => vm.start(), /stopped/);
  });

  test("kill a busy guest, stop with a grace period, kill before start", { timeout: 120_000 }, async () => {
    const sink = new TestSink();
    sink.hold(); // the guest polls the UART forever
    const vm = await createVm(riscvSpec("busy", floodGuest(10)), nodeVmHost({ console: sink }));
    const seen = states(vm);
    vm.start();
    await tick();
    vm.kill();
    assert.deepEqual(await vm.wait(), { reason: "stopped" });
    assert.deepEqual(seen, ["running", "stopped"]);

    const vm2 = await createVm(riscvSpec("busy2", floodGuest(10)), nodeVmHost({ console: sink }));
    vm2.start();
    // A bare-metal guest gets no keyboard, so no power-off request: the grace period ends in a hard stop.
    assert.deepEqual(await vm2.stop({ graceMs: 30 }), { reason: "stopped" });

    const vm3 = await createVm(riscvSpec("never", floodGuest(10)), nodeVmHost({ console: sink }));
    const seen3 = states(vm3);
    vm3.kill();
    assert.deepEqual(await vm3.wait(), { reason: "stopped" });
    assert.deepEqual(seen3, ["stopped"]);
  });

  test("two VMs at once stay apart: each sink gets only its own guest's output", {
    timeout: 120_000,
  }, async () => {
    const sinks = [new TestSink(), new TestSink()];
    const totals = [3000, 7000];
    const vms = await Promise.all(
      totals.map((t, i) =>
        createVm(
          riscvSpec(`vm${i}`, floodGuest(t), { rng: i === 1 }),
          nodeVmHost({ console: sinks[i] as TestSink }),
        ),
      ),
    );
    for (const vm of vms) vm.start();
    const exits = await Promise.all(vms.map((vm) => vm.wait()));
    for (const [i, exit] of exits.entries()) {
      assert.deepEqual(exit, { reason: "exit", code: 0, reboot: false });
      assert.equal(sinks[i]?.bytes.length, totals[i]);
      assert.deepEqual(sinks[i]?.bytes, flood(totals[i] as number));
    }
    assert.equal(
      vms[0]?.devices().some((d) => d.kind === "virtio-rng"),
      false,
    );
    assert.equal(
      vms[1]?.devices().some((d) => d.kind === "virtio-rng"),
      true,
    );
  });

  test("a spec that breaks the schema or names a missing file is a UserError", {
    timeout: 30_000,
  }, async () => {
    const host = nodeVmHost({ console: new TestSink() });
    await assert.rejects(createVm(riscvSpec("x", "k", { cpus: 0 }), host), /\/cpus/);
    await assert.rejects(createVm(riscvSpec("x", "/nonexistent/kernel"), host), /nonexistent/);
  });
});

const noKvm =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (noKvm) process.stderr.write(`skipping x86_64 VM tests: ${noKvm}\n`);

function x86Spec(name: string, kernel: string): VmSpec {
  return { ...riscvSpec(name, kernel), arch: "x86_64", memory: 64 * MiB, boot: { kernel } };
}

describe("createVm x86_64 on KVM", { skip: noKvm }, () => {
  test("start, output, stats, devices, pause/resume, kill; a guest that resets ends its VM", {
    timeout: 120_000,
  }, async () => {
    const sink = new TestSink();
    const vm = await createVm(
      { ...x86Spec("spin", guest("spin")), rng: true },
      nodeVmHost({ console: sink }),
    );
    const seen = states(vm);
    const kinds = vm.devices().map((d) => d.kind);
    assert.ok(
      kinds.includes("uart16550") && kinds.includes("i8042") && kinds.includes("virtio-rng"),
      kinds.join(),
    );
    vm.start();
    await sink.until("spinning\n".length);
    assert.equal(sink.text(), "spinning\n");
    vm.pause();
    assert.equal(vm.state.name, "paused");
    vm.resume();
    assert.equal(vm.state.name, "running");
    vm.kill();
    assert.deepEqual(await vm.wait(), { reason: "stopped" });
    assert.deepEqual(seen, ["running", "paused", "running", "stopped"]);
    const stats = vm.stats();
    assert.ok((stats.exits?.total ?? 0) > 0, JSON.stringify(stats));
    assert.equal(stats.virtio?.[0]?.device, "virtio-rng");

    const sink2 = new TestSink();
    const hello = await createVm(x86Spec("hello", guest("hello")), nodeVmHost({ console: sink2 }));
    hello.start();
    assert.deepEqual(await hello.wait(), { reason: "reboot" });
    assert.match(sink2.text(), /console=ttyS0/);
    assert.equal(sink.text(), "spinning\n", "the first VM's sink got nothing more");
  });
});
