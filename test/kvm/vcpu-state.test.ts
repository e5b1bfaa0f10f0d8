/**
 * The KVM state ioctls (src/hypervisor/kvm/vcpu-state.ts) through the engine: test/guest-x86/count.S on
 * two vCPUs (the second never started: uninitialized MP state) is paused, every vCPU's state read by its
 * own thread and the VM's state read; a second VM gets the RAM, the VM state and, through its vCPU
 * threads, the vCPU states, and the guest counts on from where it stopped without booting again.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { KvmEngine } from "../../src/engines/kvm/engine.js";
import {
  readVmState,
  type VcpuStateBytes,
  vcpuStateCaps,
  writeVmState,
} from "../../src/hypervisor/kvm/vcpu-state.js";
import { X86MicroVm } from "../../src/machine/x86-microvm/board.js";
import { parseBzImage } from "../../src/machine/x86-microvm/bzimage.js";
import { describe, test } from "../support/test.js";
import { guest, guestImages, kvmUnavailable } from "./support.js";

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (why !== undefined) console.log(`# skipping KVM state tests: ${why}`);

const MiB = 2 ** 20;
const MEMORY = 64 * MiB;
const COUNTER = 0x300000;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function board(output: { text: string }): X86MicroVm {
  return X86MicroVm.create({
    memory: MEMORY,
    cpus: 2,
    console: {
      write(byte) {
        output.text += String.fromCharCode(byte);
      },
    },
  });
}

const counter = (b: X86MicroVm) => new DataView(b.ram.read(COUNTER, 8).buffer).getBigUint64(0, true);
const rip = (s: VcpuStateBytes) => new DataView(s.regs.buffer, s.regs.byteOffset).getBigUint64(128, true);

async function until(f: () => boolean): Promise<void> {
  while (!f()) await sleep(5);
}

describe("KVM vCPU and VM state", { skip: why }, () => {
  test("read on the vCPU threads while paused, written into a fresh VM: the guest counts on", {
    timeout: 60_000,
  }, async () => {
    const first = { text: "" };
    const a = board(first);
    const path = guest("count");
    a.loadLinux(parseBzImage(readFileSync(path), path), null, "");
    const caps = vcpuStateCaps(a.kvm);
    console.log(
      `# caps: xsave ${caps.xsaveBytes} bytes, xcrs ${caps.xcrs}, events ${caps.events}, ${caps.msrIndices.length} MSRs listed`,
    );
    const engineA = new KvmEngine(a);
    const runningA = engineA.run();
    let states: VcpuStateBytes[];
    let vmState: ReturnType<typeof readVmState>;
    let ram: Uint8Array;
    let saved: bigint;
    try {
      await until(() => first.text === "counting\n" && counter(a) > 100n);
      assert.throws(() => engineA.readVcpuStates(caps), /not paused/);
      engineA.pause();
      states = engineA.readVcpuStates(caps);
      vmState = readVmState(a.vm);
      ram = a.ram.read(0, MEMORY);
      saved = counter(a);
      // The kvmclock runs on in KVM while paused; the engine holds the value it had at the pause.
      const atPause = engineA.clockAtPause();
      assert.ok(atPause !== null && atPause > 0n && atPause <= vmState.clock);
      vmState = { ...vmState, clock: atPause };
    } finally {
      engineA.stop();
      await runningA;
      a.close();
    }
    assert.equal(states.length, 2);
    const [bsp, ap] = states as [VcpuStateBytes, VcpuStateBytes];
    assert.equal(bsp.mpState, 0, "the boot vCPU runs");
    assert.equal(ap.mpState, 1, "the second vCPU was never started (uninitialized)");
    assert.ok(bsp.msrs.length > 0 && bsp.msrs.length <= caps.msrIndices.length);
    assert.ok(rip(bsp) >= 0x100000n && rip(bsp) < 0x200000n, `rip 0x${rip(bsp).toString(16)} in the guest`);
    console.log(`# ${bsp.msrs.length} of ${caps.msrIndices.length} MSRs readable; counter ${saved}`);

    const second = { text: "" };
    const b = board(second);
    b.ram.write(0, ram);
    writeVmState(b.vm, vmState);
    const engineB = new KvmEngine(b, { restore: states });
    const runningB = engineB.run();
    try {
      await until(() => counter(b) > saved + 100n);
      engineB.pause();
      const again = engineB.readVcpuStates(caps);
      assert.equal(again[1]?.mpState, 1, "the second vCPU is still waiting for its SIPI");
      assert.deepEqual(again[1]?.regs, ap.regs, "the idle vCPU's registers came back unchanged");
      engineB.resume();
      // The guest prints once, at its start: a restored guest that booted again would print again.
      assert.equal(second.text, "");
    } finally {
      engineB.stop();
      await runningB;
      b.close();
    }
  });
});
