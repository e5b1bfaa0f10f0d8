import { frs2, immI, immS, rs1 } from "./fields.js";
import { add, c64bits, type Instruction, load, or } from "./ir.js";

/**
 * F and D. Loads and stores run in wasm (they are memory traffic like any other); arithmetic, conversions
 * and compares go to the software FPU in TypeScript (fpu/execute.ts), which rounds in all five modes.
 */
const I = 0x0000707f;
const OPCODE = 0x7f;
const NAN_BOX = c64bits(0, 0xffffffff);

export const RV64FD: Instruction[] = [
  {
    name: "flw",
    mask: I,
    match: (2 << 12) | 0x07,
    body: [{ k: "requireFpu" }, { k: "setFrd", value: or(load(4, false, add(rs1, immI)), NAN_BOX) }],
  },
  {
    name: "fld",
    mask: I,
    match: (3 << 12) | 0x07,
    body: [{ k: "requireFpu" }, { k: "setFrd", value: load(8, false, add(rs1, immI)) }],
  },
  {
    name: "fsw",
    mask: I,
    match: (2 << 12) | 0x27,
    body: [{ k: "requireFpu" }, { k: "store", width: 4, addr: add(rs1, immS), value: frs2 }],
  },
  {
    name: "fsd",
    mask: I,
    match: (3 << 12) | 0x27,
    body: [{ k: "requireFpu" }, { k: "store", width: 8, addr: add(rs1, immS), value: frs2 }],
  },
  ...[
    ["op-fp", 0x53],
    ["fmadd", 0x43],
    ["fmsub", 0x47],
    ["fnmsub", 0x4b],
    ["fnmadd", 0x4f],
  ].map(
    ([name, opcode]): Instruction => ({
      name: name as string,
      mask: OPCODE,
      match: opcode as number,
      body: [{ k: "host", fn: "fpu" }],
    }),
  ),
];
