/**
 * The virtio-mmio transport (src/devices/virtio/mmio.ts) in front of any of the six devices: random
 * register reads and writes of every size (biased to the real registers and plausible values), queue
 * setups at random places in RAM, random ring contents, notifications and interrupt acknowledges.
 * Crashes: any exception, a write outside guest RAM, an interrupt line that disagrees with
 * INTERRUPT_STATUS.
 */
import fc from "fast-check";
import { MmioReg } from "../../src/devices/virtio/mmio.js";
import { Status } from "../../src/devices/virtio/spec.js";
import { TestDriver, TestMemory } from "../../test/devices/virtio/harness.js";
import { defineTarget, invariant } from "../target.js";
import { balloonModel, blkModel, consoleModel, netModel, rngModel, vsockModel } from "./devices.js";

const BASE = 0x8000_0000;
const RAM = 256 * 1024;
const MODELS = [blkModel, netModel, rngModel, consoleModel, balloonModel, vsockModel];

const value = fc.oneof(
  fc.nat(16),
  fc.constantFrom(0, 1, 2, 4, 8, 0xf, 0x7f, 0x80, 0xff, 0xffff, 0xffff_ffff, BASE, BASE + RAM - 16),
  fc.integer({ min: BASE, max: BASE + RAM - 1 }),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);
const statusValue = fc.constantFrom(
  0,
  Status.ACKNOWLEDGE,
  Status.ACKNOWLEDGE | Status.DRIVER,
  Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK,
  Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK,
  Status.FAILED,
  0xff,
);

const stepArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      offset: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...Object.values(MmioReg)) },
        fc.nat(0x1ff),
        fc.integer({ min: 0x100, max: 0x1ff }),
      ),
      size: fc.constantFrom(1, 2, 4, 4, 4, 4, 8, 3),
      lo: value,
      hi: value,
    }),
  },
  { weight: 2, arbitrary: statusValue.map((v) => ({ kind: "status" as const, v })) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("read" as const),
      offset: fc.oneof(fc.constantFrom(...Object.values(MmioReg)), fc.nat(0x1ff)),
      size: fc.constantFrom(1, 2, 4, 4, 8, 3),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("queue" as const),
      queue: fc.nat(3),
      size: fc.oneof(fc.constantFrom(1, 2, 4, 8, 16, 256, 0, 3, 0xffff), fc.nat(0xffff)),
      desc: fc.integer({ min: BASE - 64, max: BASE + RAM + 64 }),
      avail: fc.integer({ min: BASE - 64, max: BASE + RAM + 64 }),
      used: fc.integer({ min: BASE - 64, max: BASE + RAM + 64 }),
      ready: fc.nat(2),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("poke" as const),
      at: fc.nat(8192),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "start" as const }) },
  { weight: 3, arbitrary: fc.nat(3).map((q) => ({ kind: "notify" as const, q })) },
);

export const transportTarget = defineTarget({
  name: "virtio-mmio",
  about: "virtio-mmio registers, queue setup and ring memory, in front of every device",
  input: fc.record({
    model: fc.nat(MODELS.length - 1),
    variant: fc.nat(255),
    steps: fc.array(stepArb, { maxLength: 60 }),
  }),
  run({ model, variant, steps }) {
    const mem = new TestMemory(BASE, RAM);
    const dut = (MODELS[model] ?? blkModel).make(variant);
    const drv = new TestDriver(mem, dut.device);
    const out = new Uint32Array(2);
    const w = (offset: number, v: number) => drv.mmio.write(offset, 4, v >>> 0, 0);
    for (const s of steps) {
      switch (s.kind) {
        case "write":
          drv.mmio.write(s.offset, s.size, s.lo, s.hi);
          break;
        case "status":
          w(MmioReg.STATUS, s.v);
          break;
        case "read":
          drv.mmio.read(s.offset, s.size, out);
          break;
        case "queue":
          w(MmioReg.QUEUE_SEL, s.queue);
          w(MmioReg.QUEUE_SIZE, s.size);
          w(MmioReg.QUEUE_DESC_LOW, s.desc);
          w(MmioReg.QUEUE_DESC_HIGH, 0);
          w(MmioReg.QUEUE_DRIVER_LOW, s.avail);
          w(MmioReg.QUEUE_DRIVER_HIGH, 0);
          w(MmioReg.QUEUE_DEVICE_LOW, s.used);
          w(MmioReg.QUEUE_DEVICE_HIGH, 0);
          if (s.ready) w(MmioReg.QUEUE_READY, 1);
          break;
        case "poke":
          mem.bytes.set(s.bytes, s.at);
          break;
        case "start":
          try {
            drv.start({ size: 4 });
          } catch (e) {
            // The harness asserts the bring-up went through; chaos may stop it, which is no crash.
            if (!(e instanceof Error && e.name === "AssertionError")) throw e;
          }
          break;
        case "notify":
          w(MmioReg.QUEUE_NOTIFY, s.q);
          break;
      }
      invariant(mem.guardsIntact(), `after ${s.kind}: memory outside guest RAM was written`);
      invariant(drv.mmio.read(MmioReg.INTERRUPT_STATUS, 4, out), "INTERRUPT_STATUS readable");
      invariant(
        (out[0] !== 0) === drv.line.level,
        `after ${s.kind}: line ${drv.line.level}, status ${out[0]}`,
      );
    }
    dut.check();
  },
});
