/**
 * Integer loads and stores on the generated interpreter: every width and extension at aligned, misaligned
 * and page-crossing RAM addresses, through both the slow path (TLB flushed) and the fast path (same access
 * again); and access faults outside RAM, which must leave registers and memory untouched.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { MmioBus } from "../../../src/cpu/riscv/bus.js";
import { describe, it } from "../../support/test.js";
import { compareRegisters, loadRegisters } from "./check.js";
import { iType, Opc, sType } from "./encode.js";
import { CSR, hex64, RAM_BASE, RAM_END, TestMachine, u64 } from "./harness.js";
import { runs, signedImm, value64 } from "./values.js";

const m = new TestMachine();
const CODE = RAM_BASE + 0x100n;
const HANDLER = RAM_BASE + 0x800n;
/** Data lives in [DATA, DATA_END); code and the trap handler are below it. */
const DATA = RAM_BASE + 0x1_0000n;
const DATA_END = RAM_END - 0x1000n;
/** Bytes either side of the access that are checked too. */
const SLACK = 8;
m.parkTrapsAt(HANDLER);

const LOADS = [
  { name: "lb", funct3: 0, width: 1, signed: true },
  { name: "lh", funct3: 1, width: 2, signed: true },
  { name: "lw", funct3: 2, width: 4, signed: true },
  { name: "ld", funct3: 3, width: 8, signed: true },
  { name: "lbu", funct3: 4, width: 1, signed: false },
  { name: "lhu", funct3: 5, width: 2, signed: false },
  { name: "lwu", funct3: 6, width: 4, signed: false },
] as const;

const STORES = [
  { name: "sb", funct3: 0, width: 1 },
  { name: "sh", funct3: 1, width: 2 },
  { name: "sw", funct3: 2, width: 4 },
  { name: "sd", funct3: 3, width: 8 },
] as const;

/** Addresses in the data area, often at the end of a page so that wider accesses straddle two pages. */
const dataAddress = fc
  .tuple(
    fc.integer({ min: 0, max: Number((DATA_END - DATA) / 4096n) - 1 }),
    fc.oneof(
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 4095 }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 511 }).map((k) => k * 8) },
      { weight: 2, arbitrary: fc.integer({ min: 4088, max: 4095 }) },
    ),
  )
  .map(([page, offset]) => DATA + BigInt(page) * 4096n + BigInt(offset));

const baseRegister = fc.integer({ min: 1, max: 31 });
const anyRegister = fc.integer({ min: 0, max: 31 });
const window = fc.uint8Array({ minLength: 8 + 2 * SLACK, maxLength: 8 + 2 * SLACK });

const littleEndian = (bytes: Uint8Array, at: number, width: number): bigint => {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i] as number);
  return v;
};

describe("loads", () => {
  for (const ld of LOADS) {
    it(`${ld.name}: value and ${ld.signed ? "sign" : "zero"} extension, aligned, misaligned, across pages`, () => {
      fc.assert(
        fc.property(
          anyRegister,
          baseRegister,
          dataAddress,
          signedImm(12),
          window,
          (rd, rs1, addr, imm, bytes) => {
            const start = addr - BigInt(SLACK);
            m.writeBytes(start, bytes);
            const raw = littleEndian(bytes, SLACK, ld.width);
            const value = ld.signed ? u64(BigInt.asIntN(8 * ld.width, raw)) : raw;
            const word = iType(Opc.LOAD, ld.funct3, rd, rs1, imm);
            const base = addr - BigInt(imm);
            for (const path of ["slow", "fast"]) {
              if (path === "slow") m.hart.tlb.flushAll();
              const before = loadRegisters(m, CODE, [[rs1, base]]);
              const result = m.exec([word], CODE);
              const context = () => `${path} path: ${ld.name} x${rd}, ${imm}(x${rs1}) at ${hex64(addr)}`;
              const want = [...before];
              if (rd !== 0) want[rd] = value;
              compareRegisters(m.xs(), want, context);
              assert.equal(result.retired, 1, `did not retire (${context()})`);
              assert.equal(m.pc, CODE + 4n, context());
              assert.deepEqual(
                m.readBytes(start, bytes.length),
                bytes,
                `a load changed memory (${context()})`,
              );
            }
          },
        ),
        runs(250),
      );
    });
  }
});

describe("stores", () => {
  for (const st of STORES) {
    it(`${st.name}: exactly ${st.width} little-endian byte(s) written, aligned, misaligned, across pages`, () => {
      fc.assert(
        fc.property(
          baseRegister,
          anyRegister,
          dataAddress,
          signedImm(12),
          value64,
          window,
          (rs1, rs2, addr, imm, data, bytes) => {
            const start = addr - BigInt(SLACK);
            const base = addr - BigInt(imm);
            const word = sType(Opc.STORE, st.funct3, rs1, rs2, imm);
            for (const path of ["slow", "fast"]) {
              m.writeBytes(start, bytes);
              if (path === "slow") m.hart.tlb.flushAll();
              // With rs1 = rs2 the base address wins and is also the value stored.
              const before = loadRegisters(m, CODE, [
                [rs2, data],
                [rs1, base],
              ]);
              const stored = before[rs2] as bigint;
              const result = m.exec([word], CODE);
              const context = () =>
                `${path} path: ${st.name} x${rs2}=${hex64(stored)}, ${imm}(x${rs1}) at ${hex64(addr)}`;
              const want = Uint8Array.from(bytes);
              for (let i = 0; i < st.width; i++) want[SLACK + i] = Number((stored >> BigInt(8 * i)) & 0xffn);
              assert.deepEqual(m.readBytes(start, bytes.length), want, context());
              compareRegisters(m.xs(), before, context);
              assert.equal(result.retired, 1, `did not retire (${context()})`);
              assert.equal(m.pc, CODE + 4n, context());
            }
          },
        ),
        runs(250),
      );
    });
  }

  it("a store followed by a load of another width sees the stored bytes", () => {
    // sd x5, 0(x6); lw x7, 4(x6); lhu x8, 2(x6); lb x9, 7(x6)
    const addr = DATA + 0x2ffcn;
    m.reset(CODE);
    m.setX(5, 0x8899_aabb_ccdd_eeffn);
    m.setX(6, addr);
    m.exec([
      sType(Opc.STORE, 3, 6, 5, 0),
      iType(Opc.LOAD, 2, 7, 6, 4),
      iType(Opc.LOAD, 5, 8, 6, 2),
      iType(Opc.LOAD, 0, 9, 6, 7),
    ]);
    assert.equal(m.x(7), 0xffff_ffff_8899_aabbn);
    assert.equal(m.x(8), 0xccddn);
    assert.equal(m.x(9), u64(-0x78n));
  });
});

/** Accesses of `width` bytes at these addresses touch something outside RAM. */
function outsideRam(width: number): bigint[] {
  const w = BigInt(width);
  return [
    0n,
    0x1000n,
    RAM_BASE - w,
    RAM_BASE - 1n,
    RAM_END,
    RAM_END - w + 1n,
    RAM_END + 0x1000n - 1n,
    // RAM's addresses plus 4 GiB, and sign-extended: must not alias RAM.
    RAM_BASE + (1n << 32n),
    RAM_BASE + 0x10n + (1n << 32n),
    0xffff_ffff_8000_0000n,
    1n << 63n,
    u64(-1n) - w + 1n,
  ].filter((a) => !(a >= RAM_BASE && a + w <= RAM_END));
}

function checkFault(
  word: number,
  addr: bigint,
  base: number,
  cause: bigint,
  context: string,
  store: boolean,
) {
  const probe = RAM_END - 0x20n;
  const memoryBefore = m.readBytes(probe, 0x20);
  const before = loadRegisters(m, CODE, [[base, addr]]);
  m.setCsr(CSR.MCAUSE, 0n);
  const result = m.exec([word], CODE);
  assert.equal(m.pc, HANDLER, `no trap: pc ${hex64(m.pc)} (${context})`);
  assert.equal(m.csr(CSR.MCAUSE), cause, `mcause (${context})`);
  assert.equal(m.csr(CSR.MTVAL), addr, `mtval (${context})`);
  assert.equal(m.csr(CSR.MEPC), CODE, `mepc (${context})`);
  // The faulting instruction does not retire; the handler's spin does.
  assert.equal(result.retired, 1, `retired (${context})`);
  compareRegisters(m.xs(), before, () => context);
  if (store) assert.deepEqual(m.readBytes(probe, 0x20), memoryBefore, `memory changed (${context})`);
}

describe("access faults outside RAM", () => {
  for (const ld of LOADS) {
    it(`${ld.name} outside RAM raises a load access fault (mcause 5, mtval = address)`, () => {
      for (const addr of outsideRam(ld.width)) {
        checkFault(iType(Opc.LOAD, ld.funct3, 5, 6, 0), addr, 6, 5n, `${ld.name} at ${hex64(addr)}`, false);
      }
    });
  }
  for (const st of STORES) {
    it(`${st.name} outside RAM raises a store access fault (mcause 7) and writes nothing`, () => {
      for (const addr of outsideRam(st.width)) {
        checkFault(sType(Opc.STORE, st.funct3, 6, 5, 0), addr, 6, 7n, `${st.name} at ${hex64(addr)}`, true);
      }
    });
  }

  it("the aliasing of RAM + 4 GiB is checked after the fast path has cached RAM's page", () => {
    // ld x7, 0(x6) at RAM_BASE + 0x40 fills the load TLB; the same low bits + 4 GiB must still fault.
    const inRam = DATA + 0x40n;
    m.reset(CODE);
    m.setX(6, inRam);
    m.exec([iType(Opc.LOAD, 3, 7, 6, 0)]);
    assert.equal(m.pc, CODE + 4n);
    const far = inRam + (1n << 32n);
    m.reset(CODE);
    m.setX(6, far);
    m.exec([iType(Opc.LOAD, 3, 7, 6, 0)]);
    assert.equal(m.pc, HANDLER);
    assert.equal(m.csr(CSR.MCAUSE), 5n);
    assert.equal(m.csr(CSR.MTVAL), far);
    // And for stores.
    m.reset(CODE);
    m.setX(6, inRam);
    m.exec([sType(Opc.STORE, 3, 6, 5, 0)]);
    assert.equal(m.pc, CODE + 4n);
    m.reset(CODE);
    m.setX(6, far);
    m.exec([sType(Opc.STORE, 3, 6, 5, 0)]);
    assert.equal(m.pc, HANDLER);
    assert.equal(m.csr(CSR.MCAUSE), 7n);
  });
});

/**
 * A device window at DEVICE where byte i of the address space reads as ((address + i) * 0x3b) & 0xff, so
 * every width and offset gives a different value with its top bit often set. Records writes.
 */
const DEVICE = 0x1000_0000n;
const DEVICE_SIZE = 0x1000n;
class PatternBus implements MmioBus {
  readonly writes: { paddr: number; size: number; lo: number; hi: number }[] = [];
  static byte(paddr: bigint): number {
    return Number((paddr * 0x3bn) & 0xffn);
  }
  static value(paddr: bigint, size: number): bigint {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(PatternBus.byte(paddr + BigInt(i)));
    return v;
  }
  private inWindow(paddr: number, size: number): boolean {
    return paddr >= Number(DEVICE) && paddr + size <= Number(DEVICE + DEVICE_SIZE) && paddr % size === 0;
  }
  read(paddr: number, size: number, out: Uint32Array): boolean {
    if (!this.inWindow(paddr, size)) return false;
    const v = PatternBus.value(BigInt(paddr), size);
    out[0] = Number(v & 0xffff_ffffn);
    out[1] = Number(v >> 32n);
    return true;
  }
  write(paddr: number, size: number, lo: number, hi: number): boolean {
    if (!this.inWindow(paddr, size)) return false;
    this.writes.push({ paddr, size, lo, hi });
    return true;
  }
}

describe("device (MMIO) accesses", () => {
  const bus = new PatternBus();
  const d = new TestMachine(bus);
  d.parkTrapsAt(HANDLER);

  for (const ld of LOADS) {
    it(`${ld.name} from a device register: value and ${ld.signed ? "sign" : "zero"} extension`, () => {
      for (let offset = 0n; offset < 64n; offset += BigInt(ld.width)) {
        const addr = DEVICE + 0x100n + offset;
        d.reset(CODE);
        d.setX(6, addr + 16n);
        d.setX(5, 0x5555n);
        d.exec([iType(Opc.LOAD, ld.funct3, 5, 6, -16)]);
        const raw = PatternBus.value(addr, ld.width);
        const want = ld.signed ? u64(BigInt.asIntN(8 * ld.width, raw)) : raw;
        assert.equal(d.pc, CODE + 4n, `trapped at ${hex64(addr)}`);
        assert.equal(d.x(5), want, `${ld.name} at ${hex64(addr)}`);
      }
    });
  }

  for (const st of STORES) {
    it(`${st.name} to a device register: address, size and the low ${st.width} byte(s) of rs2`, () => {
      const value = 0x8877_6655_4433_2211n;
      const addr = DEVICE + 0x200n + BigInt(st.width * 3);
      bus.writes.length = 0;
      d.reset(CODE);
      d.setX(6, addr);
      d.setX(7, value);
      d.exec([sType(Opc.STORE, st.funct3, 6, 7, 0)]);
      assert.equal(d.pc, CODE + 4n);
      assert.equal(bus.writes.length, 1);
      const w = bus.writes[0] as (typeof bus.writes)[number];
      assert.equal(BigInt(w.paddr), addr);
      assert.equal(w.size, st.width);
      const written = (BigInt(w.hi >>> 0) << 32n) | BigInt(w.lo >>> 0);
      const mask = (1n << BigInt(8 * st.width)) - 1n;
      assert.equal(written & mask, value & mask);
    });
  }

  it("misaligned device accesses trap (misaligned or access fault) instead of reaching the device", () => {
    for (const [word, load] of [
      [iType(Opc.LOAD, 2, 5, 6, 0), true],
      [iType(Opc.LOAD, 3, 5, 6, 0), true],
      [sType(Opc.STORE, 2, 6, 7, 0), false],
      [sType(Opc.STORE, 1, 6, 7, 0), false],
    ] as const) {
      bus.writes.length = 0;
      d.reset(CODE);
      d.setX(5, 0x5555n);
      d.setX(6, DEVICE + 0x101n);
      d.exec([word]);
      assert.equal(d.pc, HANDLER, hex64(BigInt(word)));
      const cause = d.csr(CSR.MCAUSE);
      assert.ok(load ? cause === 4n || cause === 5n : cause === 6n || cause === 7n, `mcause ${cause}`);
      assert.equal(d.csr(CSR.MTVAL), DEVICE + 0x101n);
      assert.equal(d.x(5), 0x5555n);
      assert.equal(bus.writes.length, 0);
    }
  });
});

describe("floating-point loads and stores", () => {
  const LOAD_FP = 0x07;
  const STORE_FP = 0x27;
  const MSTATUS_FS = 3n << 13n;
  const setFs = (fs: bigint) => m.setCsr(CSR.MSTATUS, (m.csr(CSR.MSTATUS) & ~MSTATUS_FS) | (fs << 13n));
  const fs = () => (m.csr(CSR.MSTATUS) & MSTATUS_FS) >> 13n;
  const fregister = fc.integer({ min: 0, max: 31 });

  for (const [name, funct3, width] of [
    ["flw", 2, 4],
    ["fld", 3, 8],
  ] as const) {
    it(`${name}: ${width === 4 ? "NaN-boxed " : ""}value, any alignment, and FS becomes Dirty`, () => {
      fc.assert(
        fc.property(
          fregister,
          baseRegister,
          dataAddress,
          signedImm(12),
          window,
          value64,
          (rd, rs1, addr, imm, bytes, old) => {
            m.writeBytes(addr - BigInt(SLACK), bytes);
            const raw = littleEndian(bytes, SLACK, width);
            const want = width === 4 ? 0xffff_ffff_0000_0000n | raw : raw;
            setFs(1n);
            const before = loadRegisters(m, CODE, [[rs1, addr - BigInt(imm)]]);
            m.setF(rd, old);
            m.exec([iType(LOAD_FP, funct3, rd, rs1, imm)], CODE);
            const context = () => `${name} f${rd}, ${imm}(x${rs1}) at ${hex64(addr)}`;
            assert.equal(m.pc, CODE + 4n, `trapped (${context()})`);
            assert.equal(m.f(rd), want, context());
            compareRegisters(m.xs(), before, context);
            assert.equal(fs(), 3n, `FS not Dirty (${context()})`);
          },
        ),
        runs(150),
      );
    });
  }

  for (const [name, funct3, width] of [
    ["fsw", 2, 4],
    ["fsd", 3, 8],
  ] as const) {
    it(`${name}: the low ${width} bytes of the register, any alignment`, () => {
      fc.assert(
        fc.property(
          baseRegister,
          fregister,
          dataAddress,
          signedImm(12),
          window,
          value64,
          (rs1, rs2, addr, imm, bytes, v) => {
            const start = addr - BigInt(SLACK);
            m.writeBytes(start, bytes);
            setFs(1n);
            loadRegisters(m, CODE, [[rs1, addr - BigInt(imm)]]);
            m.setF(rs2, v);
            m.exec([sType(STORE_FP, funct3, rs1, rs2, imm)], CODE);
            const context = `${name} f${rs2}=${hex64(v)}, ${imm}(x${rs1}) at ${hex64(addr)}`;
            assert.equal(m.pc, CODE + 4n, `trapped (${context})`);
            const want = Uint8Array.from(bytes);
            for (let i = 0; i < width; i++) want[SLACK + i] = Number((v >> BigInt(8 * i)) & 0xffn);
            assert.deepEqual(m.readBytes(start, bytes.length), want, context);
          },
        ),
        runs(150),
      );
    });
  }

  it("with FS = Off every FP load and store is an illegal instruction and changes nothing", () => {
    const addr = DATA + 0x100n;
    const words = [
      iType(LOAD_FP, 2, 1, 6, 0),
      iType(LOAD_FP, 3, 1, 6, 0),
      sType(STORE_FP, 2, 6, 1, 0),
      sType(STORE_FP, 3, 6, 1, 0),
    ];
    for (const word of words) {
      m.writeBytes(addr, new Uint8Array(8).fill(0xab));
      setFs(0n);
      m.reset(CODE);
      m.setX(6, addr);
      m.setF(1, 0x0123_4567_89ab_cdefn);
      m.exec([word]);
      const context = `word 0x${word.toString(16)}`;
      assert.equal(m.pc, HANDLER, context);
      assert.equal(m.csr(CSR.MCAUSE), 2n, context);
      assert.equal(m.csr(CSR.MTVAL), BigInt(word), context);
      assert.equal(m.f(1), 0x0123_4567_89ab_cdefn, context);
      assert.deepEqual(m.readBytes(addr, 8), new Uint8Array(8).fill(0xab), context);
      assert.equal(fs(), 0n, context);
    }
  });
});
