/**
 * The parsers of files a user hands vireo: the FDT (src/machine/fdt), ELF and Linux Image loaders
 * (src/machine/loader) and cpio (src/images/cpio.ts). Inputs are mostly valid files mutated (bytes
 * flipped or set, 32-bit fields set to boundary values, truncated, spliced), some pure noise. A parser
 * may only answer bad input with its documented error (FdtError/UserError; cpio: an Error whose message
 * starts with "cpio:"), and what it returns must stay inside the input.
 */
import fc from "fast-check";
import { buildCpio, readCpio } from "../../src/images/cpio.js";
import { FdtError, readFdt, walkFdt } from "../../src/machine/fdt/parser.js";
import { parseElf } from "../../src/machine/loader/elf.js";
import { flattenElf, parseLinuxImage } from "../../src/machine/loader/linux-image.js";
import { buildVirtDeviceTree } from "../../src/machine/riscv-virt/device-tree.js";
import { UserError } from "../../src/util/errors.js";
import { buildElf, STB_LOCAL, STT_FILE } from "../../test/machine/elf-builder.js";
import { virtConfig } from "../../test/machine/fdt/virt-config.js";
import { allowing, defineTarget, invariant } from "../target.js";

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

const mutation = fc.oneof(
  fc.record({ op: fc.constant("byte" as const), at: fc.nat(), v: fc.nat(255) }),
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), v: fc.nat(7) }),
  fc.record({
    op: fc.constant("u32" as const),
    at: fc.nat(),
    v: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat(0x1_0000), fc.nat()),
    be: fc.boolean(),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat(), v: fc.nat() }),
  fc.record({ op: fc.constant("splice" as const), at: fc.nat(), v: fc.nat(), len: fc.nat(64) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(base: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = base.slice();
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.op) {
      case "byte":
        b[at] = m.v;
        break;
      case "flip":
        b[at] = (b[at] as number) ^ (1 << m.v);
        break;
      case "u32": {
        // Aligned to 4 half the time: most header fields are.
        const p = (m.v & 1 ? at & ~3 : at) % Math.max(1, b.length - 3);
        if (b.length >= 4) new DataView(b.buffer, b.byteOffset).setUint32(p, m.v >>> 0, !m.be);
        break;
      }
      case "truncate":
        b = b.slice(0, at);
        break;
      case "splice": {
        const from = m.v % b.length;
        const chunk = b.slice(from, from + m.len);
        const out = new Uint8Array(b.length + chunk.length);
        out.set(b.subarray(0, at));
        out.set(chunk, at);
        out.set(b.subarray(at), at + chunk.length);
        b = out;
        break;
      }
    }
  }
  return b;
}

/** Valid files mutated (weight 9) or noise (weight 1). */
function corpusInput(corpus: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    {
      weight: 9,
      arbitrary: fc
        .tuple(fc.nat(corpus.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }))
        .map(([i, ms]) => mutate(corpus[i] as Uint8Array, ms)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  );
}

const isUserError = (e: unknown) => e instanceof UserError;

const fdtCorpus = [
  buildVirtDeviceTree(virtConfig()),
  buildVirtDeviceTree(virtConfig({ cpus: 1, bootargs: "", virtioSlots: [0, 3, 7] })),
  buildVirtDeviceTree(
    virtConfig({ initrd: { start: 0x8800_0000, end: 0x8900_0000 }, rngSeed: Uint8Array.from([1, 2, 3]) }),
  ),
];

export const fdtTarget = defineTarget({
  name: "fdt",
  about: "device tree blob parser (readFdt, walkFdt) on mutated virt trees",
  input: corpusInput(fdtCorpus),
  run(blob: Uint8Array) {
    allowing(
      (e) => e instanceof FdtError,
      () => {
        const fdt = readFdt(blob);
        let nodes = 0;
        for (const { node } of walkFdt(fdt.root)) {
          nodes++;
          for (const v of node.props.values())
            invariant(v.length <= blob.length, "property longer than the blob");
        }
        invariant(nodes <= blob.length, `${nodes} nodes from ${blob.length} bytes`);
      },
    );
  },
});

const elfCorpus = [
  buildElf({
    entry: 0x8020_0000n,
    segments: [
      {
        paddr: 0x8020_0000,
        vaddr: 0x8020_0000,
        data: Uint8Array.from({ length: 64 }, (_, i) => i),
        memSize: 128,
      },
      { paddr: 0x8030_0000, vaddr: 0xffff_ffff_8030_0000, data: new Uint8Array(16).fill(7), memSize: 16 },
    ],
    symbols: [
      { name: "tohost", value: 0x8020_1000n },
      { name: "start.c", value: 0n, info: (STB_LOCAL << 4) | STT_FILE },
    ],
  }).bytes,
  buildElf({
    entry: 0x8000_0000n,
    segments: [
      { paddr: 0x8000_0000, vaddr: 0x8000_0000, data: new Uint8Array(32).fill(0x13), memSize: 4096 },
    ],
  }).bytes,
];

const RAM_BASE = 0x8000_0000;
const RAM_SIZE = 64 << 20;

export const elfTarget = defineTarget({
  name: "elf",
  about: "ELF64 parser and the flattening of its segments into a payload, on mutated ELFs",
  input: corpusInput(elfCorpus),
  run(bytes: Uint8Array) {
    allowing(isUserError, () => {
      const elf = parseElf(bytes, "fuzz.elf");
      for (const s of elf.segments) {
        invariant(s.data.length <= bytes.length, "segment data beyond the file");
        invariant(s.memSize >= s.data.length, "memSize below the file size");
      }
      const image = flattenElf(elf, RAM_BASE, RAM_SIZE, "fuzz.elf");
      invariant(image.textOffset + image.imageSize <= RAM_SIZE, "flattened image beyond RAM");
    });
  },
});

function linuxImage(textOffset: number, imageSize: number, oldMagic: boolean, body: number): Uint8Array {
  const b = new Uint8Array(64 + body);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x0000_006f, true);
  v.setUint32(8, textOffset, true);
  v.setUint32(16, imageSize, true);
  if (oldMagic) b.set([0x52, 0x49, 0x53, 0x43, 0x56], 48);
  else b.set([0x52, 0x53, 0x43, 0x05], 56);
  return b;
}

export const imageTarget = defineTarget({
  name: "linux-image",
  about: "RISC-V Linux Image header parser on mutated headers",
  input: corpusInput([linuxImage(0x20_0000, 0x100_0000, false, 64), linuxImage(0, 0, true, 0)]),
  run(bytes: Uint8Array) {
    allowing(isUserError, () => {
      const image = parseLinuxImage(bytes, "Image");
      invariant(image.imageSize >= bytes.length, "imageSize below the file size");
      invariant(Number.isSafeInteger(image.textOffset) && image.textOffset % 4096 === 0, "text_offset");
    });
  },
});

const cpioCorpus = [
  buildCpio([
    { type: "dir", path: "bin" },
    { type: "file", path: "bin/init", data: "#!/bin/sh\necho hi\n", mode: 0o755 },
    { type: "symlink", path: "bin/sh", target: "busybox" },
    { type: "char", path: "dev/console", major: 5, minor: 1 },
  ]),
  buildCpio([{ type: "file", path: "a", data: new Uint8Array(3) }], { mtime: 1234 }),
];

export const cpioTarget = defineTarget({
  name: "cpio",
  about: "newc cpio reader on mutated archives",
  input: corpusInput(cpioCorpus),
  run(bytes: Uint8Array) {
    allowing(
      (e) => e instanceof Error && e.constructor === Error && e.message.startsWith("cpio:"),
      () => {
        const entries = readCpio(bytes);
        invariant(
          entries.length <= bytes.length / 110,
          `${entries.length} entries from ${bytes.length} bytes`,
        );
      },
    );
  },
});
