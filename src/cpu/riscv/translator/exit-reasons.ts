import { csrName } from "../csr/csr-numbers.js";
import { expandCompressed } from "../isa/compressed.js";

/**
 * Why translated code did not run at some pc, counted on the slow path only (TypeScript between
 * dispatcher calls), with the instructions the interpreter then ran: the map of what to translate next.
 */
export class ExitReasons {
  /** Reason → times the dispatcher handed that pc back to TypeScript for it. */
  readonly events = new Map<string, number>();
  /** Reason → guest instructions the interpreter ran in the units that followed. */
  readonly interpreted = new Map<string, number>();

  count(reason: string, steps: number): void {
    this.add(reason, 1, steps);
  }

  add(reason: string, events: number, steps: number): void {
    this.events.set(reason, (this.events.get(reason) ?? 0) + events);
    if (steps > 0) this.interpreted.set(reason, (this.interpreted.get(reason) ?? 0) + steps);
  }

  clear(): void {
    this.events.clear();
    this.interpreted.clear();
  }
}

const PRIVILEGED: Record<number, string> = {
  115: "ecall",
  1048691: "ebreak",
  807403635: "mret",
  270532723: "sret",
  273678451: "wfi",
};

/**
 * Names the instruction at `offset` of a code page the way the exit map reports it: SYSTEM instructions
 * by what they do (a CSR access by CSR and whether it writes), FPU arithmetic as one kind.
 */
export function instructionKind(bytes: Uint8Array, offset: number): string {
  if (offset + 2 > bytes.length) return "page-end";
  const half = (bytes[offset] as number) | ((bytes[offset + 1] as number) << 8);
  let word: number;
  if ((half & 3) !== 3) word = expandCompressed(half);
  else if (offset + 4 > bytes.length) return "page-end";
  else word = (half | ((bytes[offset + 2] as number) << 16) | ((bytes[offset + 3] as number) << 24)) >>> 0;
  const opcode = word & 0x7f;
  if (opcode === 0x53 || opcode === 0x43 || opcode === 0x47 || opcode === 0x4b || opcode === 0x4f)
    return "fpu";
  if (opcode !== 0x73) return "illegal";
  const funct3 = (word >>> 12) & 7;
  if (funct3 === 0) {
    if (word >>> 25 === 0x09 && ((word >>> 7) & 0x1f) === 0) return "sfence.vma";
    return PRIVILEGED[word] ?? "illegal";
  }
  const rs1 = (word >>> 15) & 0x1f;
  const writes = (funct3 & 3) === 1 || rs1 !== 0;
  return `csr-${writes ? "w" : "r"}-${csrName(word >>> 20)}`;
}
