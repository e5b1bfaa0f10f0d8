/**
 * FdtBuilder writes a flattened device tree blob (DTB version 17, last compatible version 16) one token at
 * a time, the way a tree is walked: beginNode, its properties, its children, endNode.
 *
 *   const fdt = new FdtBuilder();
 *   const intc = fdt.allocPhandle("intc");
 *   fdt.beginNode("");
 *   fdt.propU32("#address-cells", 2);
 *   fdt.beginNode("interrupt-controller");
 *   fdt.propEmpty("interrupt-controller");
 *   fdt.propPhandle(intc);
 *   fdt.endNode();
 *   fdt.beginNode("uart@1000");
 *   fdt.propCells("interrupts-extended", [fdt.phandle("intc"), 11]);
 *   fdt.endNode();
 *   fdt.endNode();
 *   const blob = fdt.finish({ bootCpuId: 0 });
 *
 * Property names go to a deduplicated strings block; the memory-reservation block is empty. Misuse (a
 * property outside a node or after a child node, unbalanced nodes, bad names, values that do not fit a
 * cell, a phandle allocated but given to no node or to two) throws an Error: these are bugs in the code
 * describing the board, not in anything a user gave.
 */
import {
  alignUp,
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_HEADER_SIZE,
  FDT_LAST_COMP_VERSION,
  FDT_MAGIC,
  FDT_PROP,
  FDT_RSVMAP_ALIGN,
  FDT_RSVMAP_ENTRY_SIZE,
  FDT_TAG_ALIGN,
  FDT_VERSION,
  HDR_BOOT_CPUID_PHYS,
  HDR_LAST_COMP_VERSION,
  HDR_MAGIC,
  HDR_OFF_DT_STRINGS,
  HDR_OFF_DT_STRUCT,
  HDR_OFF_MEM_RSVMAP,
  HDR_SIZE_DT_STRINGS,
  HDR_SIZE_DT_STRUCT,
  HDR_TOTALSIZE,
  HDR_VERSION,
  NODE_NAME_CHARS,
  PROPERTY_NAME_CHARS,
} from "./format.js";

/** What `prop` accepts: a string, a string list, one cell, a cell list, or raw bytes. */
export type FdtValue = string | readonly string[] | number | readonly number[] | Uint8Array;

export interface FinishOptions {
  /** boot_cpuid_phys in the header: the hart that boots (default 0). */
  bootCpuId?: number;
  /**
   * Zero bytes appended after the strings block and counted in totalsize, for firmware that edits the
   * tree in place (OpenSBI and U-Boot add nodes with libfdt's fdt_open_into). Default 0.
   */
  extraSpace?: number;
}

const encoder = new TextEncoder();

/** The two big-endian cells of a 64-bit value: [high, low]. The value must be a non-negative safe integer. */
export function u64Cells(value: number): [number, number] {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`device tree: ${value} is not a 64-bit value below 2^53`);
  }
  return [Math.floor(value / 2 ** 32), value >>> 0];
}

/** A growable big-endian byte buffer. */
class ByteWriter {
  private bytes = new Uint8Array(256);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + extra) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  u32(value: number): void {
    this.reserve(4);
    const at = this.length;
    this.bytes[at] = value >>> 24;
    this.bytes[at + 1] = (value >>> 16) & 0xff;
    this.bytes[at + 2] = (value >>> 8) & 0xff;
    this.bytes[at + 3] = value & 0xff;
    this.length += 4;
  }

  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  pad(alignment: number): void {
    const target = alignUp(this.length, alignment);
    this.reserve(target - this.length);
    this.bytes.fill(0, this.length, target);
    this.length = target;
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

interface OpenNode {
  path: string;
  properties: Set<string>;
  children: Set<string>;
}

interface PhandleInfo {
  label: string | undefined;
  /** The path of the node whose "phandle" property holds it, once written. */
  owner: string | undefined;
}

function checkCell(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new Error(`device tree: ${what}: ${value} does not fit a 32-bit cell`);
  }
}

function checkString(value: string, what: string): void {
  if (value.includes("\0")) throw new Error(`device tree: ${what}: strings cannot contain NUL`);
}

export class FdtBuilder {
  private readonly struct = new ByteWriter();
  private readonly strings = new ByteWriter();
  private readonly stringOffsets = new Map<string, number>();
  private readonly stack: OpenNode[] = [];
  private readonly phandles = new Map<number, PhandleInfo>();
  private readonly labels = new Map<string, number>();
  private rootDone = false;
  private finished = false;

  /** Opens a node: "" for the root, then names like "cpu@0" (node-name[@unit-address]). */
  beginNode(name: string): this {
    this.checkOpen();
    const parent = this.stack.at(-1);
    if (parent === undefined) {
      if (this.rootDone) throw new Error("device tree: a second root node");
      if (name !== "") throw new Error(`device tree: the root node's name must be "", not "${name}"`);
    } else {
      checkNodeName(name, parent.path);
      if (parent.children.has(name)) throw new Error(`device tree: ${parent.path} has two "${name}" nodes`);
      parent.children.add(name);
    }
    this.struct.u32(FDT_BEGIN_NODE);
    this.struct.raw(encoder.encode(name));
    this.struct.raw(new Uint8Array(1));
    this.struct.pad(FDT_TAG_ALIGN);
    const path = parent === undefined ? "/" : parent.path === "/" ? `/${name}` : `${parent.path}/${name}`;
    this.stack.push({ path, properties: new Set(), children: new Set() });
    return this;
  }

  endNode(): this {
    this.checkOpen();
    if (this.stack.pop() === undefined) throw new Error("device tree: endNode without a matching beginNode");
    this.struct.u32(FDT_END_NODE);
    if (this.stack.length === 0) this.rootDone = true;
    return this;
  }

  /** A property from a JS value: string, string list, u32 cell, cell list or bytes. */
  prop(name: string, value: FdtValue): this {
    if (typeof value === "string") return this.propString(name, value);
    if (typeof value === "number") return this.propU32(name, value);
    if (value instanceof Uint8Array) return this.propBytes(name, value);
    if (value.every((v): v is string => typeof v === "string")) return this.propStrings(name, value);
    return this.propCells(name, value as readonly number[]);
  }

  /** A property with no value (a flag such as "interrupt-controller" or "ranges"). */
  propEmpty(name: string): this {
    return this.propBytes(name, new Uint8Array(0));
  }

  propU32(name: string, value: number): this {
    return this.propCells(name, [value]);
  }

  /** A list of 32-bit cells. */
  propCells(name: string, cells: readonly number[]): this {
    const bytes = new Uint8Array(cells.length * 4);
    const view = new DataView(bytes.buffer);
    cells.forEach((cell, i) => {
      checkCell(cell, `${this.where()} ${name}[${i}]`);
      view.setUint32(i * 4, cell);
    });
    if (name === "phandle" || name === "linux,phandle") this.claimPhandle(name, cells);
    return this.propBytes(name, bytes);
  }

  /** One or more 64-bit values, two cells each ([high, low]); e.g. reg with #address-cells = #size-cells = 2. */
  propU64(name: string, ...values: number[]): this {
    return this.propCells(
      name,
      values.flatMap((v) => u64Cells(v)),
    );
  }

  propString(name: string, value: string): this {
    return this.propStrings(name, [value]);
  }

  /** A string list: each string NUL-terminated, one after the other. */
  propStrings(name: string, values: readonly string[]): this {
    const parts = values.map((v) => {
      checkString(v, `${this.where()} ${name}`);
      return encoder.encode(`${v}\0`);
    });
    const bytes = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    return this.propBytes(name, bytes);
  }

  /** A property holding exactly these bytes. */
  propBytes(name: string, value: Uint8Array): this {
    this.checkOpen();
    const node = this.stack.at(-1);
    if (node === undefined) throw new Error(`device tree: property "${name}" outside any node`);
    if (!PROPERTY_NAME_CHARS.test(name)) {
      throw new Error(`device tree: ${node.path}: invalid property name "${name}"`);
    }
    if (node.children.size > 0) {
      throw new Error(`device tree: ${node.path}: property "${name}" after child nodes`);
    }
    if (node.properties.has(name)) throw new Error(`device tree: ${node.path}: two "${name}" properties`);
    node.properties.add(name);
    this.struct.u32(FDT_PROP);
    this.struct.u32(value.length);
    this.struct.u32(this.stringOffset(name));
    this.struct.raw(value);
    this.struct.pad(FDT_TAG_ALIGN);
    return this;
  }

  /**
   * A fresh phandle (1, 2, ...), optionally under a label so later code can find it with `phandle(label)`.
   * Allocate before the node is written so that nodes written earlier can already refer to it.
   */
  allocPhandle(label?: string): number {
    this.checkOpen();
    if (label !== undefined && this.labels.has(label)) {
      throw new Error(`device tree: phandle label "${label}" is already taken`);
    }
    const phandle = this.phandles.size + 1;
    this.phandles.set(phandle, { label, owner: undefined });
    if (label !== undefined) this.labels.set(label, phandle);
    return phandle;
  }

  /** The phandle allocated under `label`. */
  phandle(label: string): number {
    const phandle = this.labels.get(label);
    if (phandle === undefined) throw new Error(`device tree: no phandle labelled "${label}"`);
    return phandle;
  }

  /** Gives the open node its phandle (the "phandle" property). */
  propPhandle(phandle: number): this {
    return this.propU32("phandle", phandle);
  }

  /** The blob. The builder cannot be used afterwards. */
  finish(options: FinishOptions = {}): Uint8Array {
    this.checkOpen();
    const bootCpuId = options.bootCpuId ?? 0;
    const extraSpace = options.extraSpace ?? 0;
    checkCell(bootCpuId, "boot CPU id");
    if (!Number.isSafeInteger(extraSpace) || extraSpace < 0) {
      throw new Error(`device tree: extra space ${extraSpace} is not a byte count`);
    }
    const open = this.stack.at(-1);
    if (open !== undefined) throw new Error(`device tree: finish with ${open.path} still open`);
    if (!this.rootDone) throw new Error("device tree: finish without a root node");
    for (const [phandle, info] of this.phandles) {
      if (info.owner === undefined) {
        const name = info.label === undefined ? "" : ` ("${info.label}")`;
        throw new Error(`device tree: phandle ${phandle}${name} was allocated but no node has it`);
      }
    }
    this.finished = true;
    this.struct.u32(FDT_END);

    const offRsvmap = alignUp(FDT_HEADER_SIZE, FDT_RSVMAP_ALIGN);
    const offStruct = offRsvmap + FDT_RSVMAP_ENTRY_SIZE; // only the terminating (0, 0) entry
    const offStrings = offStruct + this.struct.length;
    const used = offStrings + this.strings.length;
    const total = used + extraSpace;
    checkCell(total, "total size");

    const blob = new Uint8Array(total);
    const header = new DataView(blob.buffer);
    header.setUint32(HDR_MAGIC, FDT_MAGIC);
    header.setUint32(HDR_TOTALSIZE, total);
    header.setUint32(HDR_OFF_DT_STRUCT, offStruct);
    header.setUint32(HDR_OFF_DT_STRINGS, offStrings);
    header.setUint32(HDR_OFF_MEM_RSVMAP, offRsvmap);
    header.setUint32(HDR_VERSION, FDT_VERSION);
    header.setUint32(HDR_LAST_COMP_VERSION, FDT_LAST_COMP_VERSION);
    header.setUint32(HDR_BOOT_CPUID_PHYS, bootCpuId);
    header.setUint32(HDR_SIZE_DT_STRINGS, this.strings.length);
    header.setUint32(HDR_SIZE_DT_STRUCT, this.struct.length);
    blob.set(this.struct.view(), offStruct);
    blob.set(this.strings.view(), offStrings);
    return blob;
  }

  private checkOpen(): void {
    if (this.finished) throw new Error("device tree: the builder was already finished");
  }

  private where(): string {
    return this.stack.at(-1)?.path ?? "(no node)";
  }

  private stringOffset(name: string): number {
    let offset = this.stringOffsets.get(name);
    if (offset === undefined) {
      offset = this.strings.length;
      this.strings.raw(encoder.encode(`${name}\0`));
      this.stringOffsets.set(name, offset);
    }
    return offset;
  }

  private claimPhandle(name: string, cells: readonly number[]): void {
    if (this.stack.length === 0) return; // propBytes reports it
    const path = this.where();
    if (cells.length !== 1) throw new Error(`device tree: ${path}: ${name} must be one cell`);
    const phandle = cells[0] as number;
    const info = this.phandles.get(phandle);
    if (info === undefined) {
      throw new Error(`device tree: ${path}: phandle ${phandle} was not allocated with allocPhandle`);
    }
    if (info.owner !== undefined && info.owner !== path) {
      throw new Error(`device tree: phandle ${phandle} given to both ${info.owner} and ${path}`);
    }
    info.owner = path;
  }
}

function checkNodeName(name: string, parentPath: string): void {
  const at = name.indexOf("@");
  const base = at < 0 ? name : name.slice(0, at);
  const unit = at < 0 ? undefined : name.slice(at + 1);
  if (!NODE_NAME_CHARS.test(base) || (unit !== undefined && !NODE_NAME_CHARS.test(unit))) {
    throw new Error(`device tree: ${parentPath}: invalid node name "${name}"`);
  }
}
