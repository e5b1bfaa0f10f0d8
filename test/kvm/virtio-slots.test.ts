/**
 * The x86 microVM's virtio slots in-process (no guest runs): slot allocation and errors, what the DSDT
 * and the command line are given, and the irqfd line's bookkeeping. Closing the board must release
 * every eventfd watch, or this file's process would not exit.
 */
import assert from "node:assert/strict";
import { VirtioRng } from "../../src/devices/virtio/rng/virtio-rng.js";
import { IrqfdLine } from "../../src/hypervisor/kvm/eventfd.js";
import { X86MicroVm } from "../../src/machine/x86-microvm/board.js";
import { VIRTIO_MMIO } from "../../src/machine/x86-microvm/memory-map.js";
import { describe, test } from "../support/test.js";
import { kvmUnavailable } from "./support.js";

const why = kvmUnavailable();
if (why !== undefined) console.log(`# skipping KVM virtio slot tests: ${why}`);

const entropy = { fill: (dst: Uint8Array) => dst.fill(0x42) };
const board = () => X86MicroVm.create({ memory: 16 * 2 ** 20, cpus: 1, console: { write() {} } });

describe("x86 microVM virtio slots", { skip: why }, () => {
  test("slots fill in order; windows, GSIs, DSDT entries and command line follow the table", () => {
    const b = board();
    try {
      assert.equal(b.kernelCommandLine("console=ttyS0"), "console=ttyS0");
      const first = b.virtio.attach(new VirtioRng(entropy));
      b.virtio.attach(new VirtioRng(entropy), 3);
      const second = b.virtio.attach(new VirtioRng(entropy));
      assert.equal(b.virtio.at(0), first);
      assert.equal(b.virtio.at(1), second);
      assert.deepEqual(
        b.virtio.used().map((s) => [s.index, s.base, s.gsi]),
        [
          [0, 0xc000_1000, 5],
          [1, 0xc000_2000, 6],
          [3, 0xc000_4000, 8],
        ],
      );
      assert.deepEqual(b.virtio.acpiDevices()[2], { base: 0xc000_4000, size: 0x1000, gsi: 8 });
      assert.equal(
        b.kernelCommandLine("console=ttyS0"),
        "console=ttyS0 virtio_mmio.device=4K@0xc0001000:5 virtio_mmio.device=4K@0xc0002000:6 " +
          "virtio_mmio.device=4K@0xc0004000:8",
      );
      assert.equal(b.virtio.find(VirtioRng), first.device);
      assert.deepEqual(b.virtio.counters(0), {
        mmioExits: 0,
        notifyExits: 0,
        ioeventfd: 0,
        irqfd: 0,
        resamples: 0,
      });
      assert.equal(b.virtio.counters(2), null);
      assert.throws(() => b.virtio.attach(new VirtioRng(entropy), 3), /slot 3 is already in use/);
      assert.throws(() => b.virtio.attach(new VirtioRng(entropy), VIRTIO_MMIO.slots), /does not exist/);
      for (let i = 0; i < 5; i++) b.virtio.attach(new VirtioRng(entropy));
      assert.throws(() => b.virtio.attach(new VirtioRng(entropy)), /all 8 virtio slots are in use/);
    } finally {
      b.close();
    }
  });

  test("devices see the RAM below the MMIO hole, bounds-checked", () => {
    const b = board();
    try {
      const memory = b.virtio.memory;
      assert.equal(memory.base, 0);
      assert.equal(memory.size, 16 * 2 ** 20);
      assert.ok(memory.contains(0x1000, 16));
      assert.ok(!memory.contains(16 * 2 ** 20 - 8, 16));
      assert.ok(!memory.contains(0xc000_1000, 4));
    } finally {
      b.close();
    }
  });

  test("the irqfd line writes the eventfd on rising levels only", (t) => {
    const b = board();
    try {
      if (!b.irqfdResample) {
        t.skip("this host's KVM lacks KVM_CAP_IRQFD_RESAMPLE");
        return;
      }
      const line = new IrqfdLine(b.vm, 20);
      try {
        line.set(false);
        line.set(true);
        line.set(true);
        line.set(false);
        line.set(true);
        assert.deepEqual(line.counters, { signals: 2, resamples: 0 });
      } finally {
        line.close();
      }
    } finally {
      b.close();
    }
  });
});
