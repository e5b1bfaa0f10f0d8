/**
 * Dynamic instruction mix of a bare-metal RISC-V ELF, measured with the QEMU that is installed (Debian's
 * QEMU ships no TCG plugins): run it with `-d in_asm,exec,nochain`, which logs every translated block's
 * disassembly once and every block execution as a "Trace" line, then multiply out.
 *
 *   node dist/bench/tools/insn-mix.js <elf> [--keep-log]
 *
 * The log is ~11 bytes per guest instruction, so use a short build of the workload
 * (`make -C bench/guest ROUNDS=1 OUT=/tmp/cpu1`): the mix per round is constant.
 * Counts are exact for code that takes no traps in the middle of a block (true for the benchmark guests).
 */
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { failureReason, runTimed } from "../lib/proc.js";
import { renderTable } from "../lib/table.js";

/** QEMU's disassembler prints pseudo-instructions; fold them into the instruction they stand for. */
const ALIASES: Record<string, string> = {
  mv: "addi",
  li: "addi",
  nop: "addi",
  not: "xori",
  neg: "sub",
  negw: "subw",
  "sext.w": "addiw",
  seqz: "sltiu",
  snez: "sltu",
  sltz: "slt",
  sgtz: "slt",
  beqz: "beq",
  bnez: "bne",
  blez: "bge",
  bgez: "bge",
  bltz: "blt",
  bgtz: "blt",
  bgt: "blt",
  ble: "bge",
  bgtu: "bltu",
  bleu: "bgeu",
  j: "jal",
  jr: "jalr",
  ret: "jalr",
  rdinstret: "csrrs",
  rdcycle: "csrrs",
  rdtime: "csrrs",
  csrr: "csrrs",
  csrw: "csrrw",
  csrs: "csrrs",
  csrc: "csrrc",
};

const CLASSES: [string, RegExp][] = [
  ["loads", /^(lb|lh|lw|ld|lbu|lhu|lwu|flw|fld)$/],
  ["stores", /^(sb|sh|sw|sd|fsw|fsd)$/],
  ["branches", /^(beq|bne|blt|bge|bltu|bgeu)$/],
  ["jumps", /^(jal|jalr)$/],
  ["mul", /^mul/],
  ["div/rem", /^(div|rem)/],
  ["system (csr, wfi, mret, fence)", /^(csr|wfi|mret|sret|sfence|fence|ecall|ebreak)/],
];

interface Block {
  insns: { name: string; compressed: boolean }[];
  runs: number;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const elf = args.find((a) => !a.startsWith("--"));
  if (!elf) {
    console.error("usage: node dist/bench/tools/insn-mix.js <elf> [--keep-log]");
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), "vireo-mix-"));
  const log = join(dir, "qemu.log");
  try {
    const run = await runTimed("qemu-system-riscv64", [
      ...["-M", "spike", "-bios", "none", "-nographic", "-kernel", elf],
      ...["-d", "in_asm,exec,nochain", "-D", log],
    ]);
    const why = failureReason(run);
    if (why) {
      console.error(`qemu: ${why}\n${run.stderr}`);
      return 1;
    }
    process.stdout.write(`guest output: ${run.stdout.replace(/\r/g, "").trim().replace(/\n/g, " | ")}\n`);

    const blocks = new Map<string, Block>(); // by host code address
    let translating: Block | undefined;
    const lines = createInterface({ input: createReadStream(log), crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.startsWith("Trace ")) {
        // "Trace <cpu>: <host code address> [<cs_base>/<pc>/<flags>/<cflags>]": the host address tells
        // apart blocks that start at the same pc (e.g. a one-instruction retranslation around I/O).
        const host = /^Trace \d+: (\S+)/.exec(line)?.[1] ?? "";
        if (translating) {
          blocks.set(host, translating);
          translating = undefined;
        }
        const block = blocks.get(host);
        if (!block) throw new Error(`execution of an unknown block: ${line}`);
        block.runs++;
      } else if (line.startsWith("IN:")) {
        // A translation is logged right before its first execution.
        translating = { insns: [], runs: 0 };
      } else if (translating && line.startsWith("0x")) {
        const m = /^0x[0-9a-f]+:\s+([0-9a-f]+)\s+(\S+)/.exec(line);
        if (m) translating.insns.push({ name: ALIASES[m[2]] ?? m[2], compressed: m[1].length === 4 });
      }
    }

    const byName = new Map<string, number>();
    let total = 0;
    let compressed = 0;
    for (const block of new Set(blocks.values())) {
      for (const insn of block.insns) {
        byName.set(insn.name, (byName.get(insn.name) ?? 0) + block.runs);
        total += block.runs;
        if (insn.compressed) compressed += block.runs;
      }
    }
    const pct = (n: number) => `${((100 * n) / total).toFixed(1)} %`;
    console.log(`dynamic instructions: ${total.toLocaleString("en-US")} (${pct(compressed)} compressed)\n`);

    const classes = new Map<string, number>();
    for (const [name, n] of byName) {
      const cls = CLASSES.find(([, re]) => re.test(name))?.[0] ?? "other ALU (incl. lui/auipc)";
      classes.set(cls, (classes.get(cls) ?? 0) + n);
    }
    const sortDesc = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
    console.log(
      renderTable(
        ["class", "share"],
        sortDesc(classes).map(([c, n]) => [c, pct(n)]),
      ),
    );
    console.log();
    console.log(
      renderTable(
        ["instruction", "count", "share"],
        sortDesc(byName).map(([name, n]) => [name, n.toLocaleString("en-US"), pct(n)]),
      ),
    );
    return 0;
  } finally {
    if (args.includes("--keep-log")) console.error(`log kept in ${log}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
