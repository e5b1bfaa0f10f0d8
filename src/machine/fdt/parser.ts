/**
 * Reading flattened device tree blobs: the header is validated (magic, version, every block inside the
 * blob), then the structure block is walked token by token into FdtNodes. Blobs may come from the user
 * (`--dtb`), so every offset is checked before it is read and every problem is an FdtError (a UserError)
 * saying what is wrong and where; parsing never reads out of bounds and always advances, so it cannot hang.
 */
import { UserError } from "../../util/errors.js";
import {
  alignUp,
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_HEADER_SIZE,
  FDT_MAGIC,
  FDT_NOP,
  FDT_PROP,
  FDT_RSVMAP_ALIGN,
  FDT_RSVMAP_ENTRY_SIZE,
  FDT_TAG_ALIGN,
  FDT_V16_HEADER_SIZE,
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
} from "./format.js";

export class FdtError extends UserError {
  override name = "FdtError";
}

export interface FdtNode {
  /** "" for the root, else e.g. "cpu@0". */
  name: string;
  /** Property values in blob order (copies, not views into the blob). */
  props: Map<string, Uint8Array>;
  children: FdtNode[];
}

export interface FdtHeader {
  totalSize: number;
  offStruct: number;
  offStrings: number;
  offRsvmap: number;
  version: number;
  lastCompVersion: number;
  bootCpuId: number;
  sizeStrings: number;
  /** From the header (version 17) or up to and including FDT_END (version 16). */
  sizeStruct: number;
}

export interface FdtReservation {
  address: number;
  size: number;
}

export interface FdtBlob {
  header: FdtHeader;
  reservations: FdtReservation[];
  root: FdtNode;
}

const decoder = new TextDecoder();

function fail(problem: string): never {
  throw new FdtError(`invalid device tree blob: ${problem}`);
}

/** Whether `bytes` starts with the DTB magic number. */
export function isFdt(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0xd0 && bytes[1] === 0x0d && bytes[2] === 0xfe && bytes[3] === 0xed
  );
}

/** The root node of a blob. */
export function parseFdt(blob: Uint8Array): FdtNode {
  return readFdt(blob).root;
}

/** Header, memory reservations and tree of a blob. */
export function readFdt(blob: Uint8Array): FdtBlob {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const header = readHeader(blob, view);
  const reservations = readReservations(view, header);
  const { root, size } = readStructure(blob, view, header);
  return { header: { ...header, sizeStruct: size }, reservations, root };
}

function readHeader(blob: Uint8Array, view: DataView): FdtHeader {
  if (blob.length < FDT_V16_HEADER_SIZE) fail(`${blob.length} bytes is too short for a header`);
  const magic = view.getUint32(HDR_MAGIC);
  if (magic !== FDT_MAGIC) fail(`bad magic 0x${magic.toString(16).padStart(8, "0")} (expected 0xd00dfeed)`);
  const version = view.getUint32(HDR_VERSION);
  const lastCompVersion = view.getUint32(HDR_LAST_COMP_VERSION);
  if (version < 16) fail(`version ${version} is too old (16 or later is supported)`);
  if (lastCompVersion > FDT_VERSION) {
    fail(`version ${version} needs a reader for version ${lastCompVersion} (this one reads ${FDT_VERSION})`);
  }
  if (lastCompVersion > version)
    fail(`last compatible version ${lastCompVersion} is above version ${version}`);
  const headerSize = version >= 17 ? FDT_HEADER_SIZE : FDT_V16_HEADER_SIZE;
  if (blob.length < headerSize) fail(`${blob.length} bytes is too short for a version ${version} header`);

  const totalSize = view.getUint32(HDR_TOTALSIZE);
  if (totalSize > blob.length) fail(`totalsize ${totalSize} is larger than the ${blob.length}-byte blob`);
  if (totalSize < headerSize) fail(`totalsize ${totalSize} is smaller than the header`);
  const offStruct = view.getUint32(HDR_OFF_DT_STRUCT);
  const offStrings = view.getUint32(HDR_OFF_DT_STRINGS);
  const offRsvmap = view.getUint32(HDR_OFF_MEM_RSVMAP);
  const sizeStrings = view.getUint32(HDR_SIZE_DT_STRINGS);
  const sizeStruct =
    version >= 17 ? view.getUint32(HDR_SIZE_DT_STRUCT) : totalSize - Math.min(offStruct, totalSize);

  const block = (what: string, offset: number, size: number, alignment: number) => {
    if (offset % alignment !== 0) fail(`${what} offset ${offset} is not ${alignment}-byte aligned`);
    if (offset < headerSize) fail(`${what} offset ${offset} overlaps the header`);
    if (offset + size > totalSize) {
      fail(`${what} (bytes ${offset}..${offset + size}) extends past totalsize ${totalSize}`);
    }
  };
  block("memory reservation block", offRsvmap, 0, FDT_RSVMAP_ALIGN);
  block("structure block", offStruct, sizeStruct, FDT_TAG_ALIGN);
  block("strings block", offStrings, sizeStrings, 1);
  return {
    totalSize,
    offStruct,
    offStrings,
    offRsvmap,
    version,
    lastCompVersion,
    bootCpuId: view.getUint32(HDR_BOOT_CPUID_PHYS),
    sizeStrings,
    sizeStruct,
  };
}

function readReservations(view: DataView, header: FdtHeader): FdtReservation[] {
  const reservations: FdtReservation[] = [];
  for (let at = header.offRsvmap; ; at += FDT_RSVMAP_ENTRY_SIZE) {
    if (at + FDT_RSVMAP_ENTRY_SIZE > header.totalSize)
      fail("memory reservation block has no terminating entry");
    const address = u64At(view, at, "reserved address");
    const size = u64At(view, at + 8, "reserved size");
    if (address === 0 && size === 0) return reservations;
    reservations.push({ address, size });
  }
}

function u64At(view: DataView, at: number, what: string): number {
  const high = view.getUint32(at);
  if (high >= 0x20_0000) fail(`${what} at byte ${at} does not fit below 2^53`);
  return high * 2 ** 32 + view.getUint32(at + 4);
}

interface Frame {
  node: FdtNode;
  childNames: Set<string>;
  path: string;
}

function readStructure(blob: Uint8Array, view: DataView, header: FdtHeader): { root: FdtNode; size: number } {
  const start = header.offStruct;
  const end = start + header.sizeStruct;
  const stringsEnd = header.offStrings + header.sizeStrings;
  const stack: Frame[] = [];
  let root: FdtNode | undefined;
  let at = start;

  const u32 = (what: string): number => {
    if (at + 4 > end) fail(`structure block ends inside ${what} at byte ${at}`);
    const value = view.getUint32(at);
    at += 4;
    return value;
  };
  /** The NUL-terminated string at `offset`, which must end before `limit`. */
  const cString = (offset: number, limit: number, what: string): string => {
    const nul = blob.subarray(offset, limit).indexOf(0);
    if (nul < 0) fail(`${what} at byte ${offset} is not NUL-terminated`);
    return decoder.decode(blob.subarray(offset, offset + nul));
  };

  for (;;) {
    const tokenAt = at;
    const token = u32("a token");
    const frame = stack.at(-1);
    switch (token) {
      case FDT_NOP:
        break;
      case FDT_BEGIN_NODE: {
        const nameLength = blob.subarray(at, end).indexOf(0);
        if (nameLength < 0) fail(`node name at byte ${at} is not NUL-terminated`);
        const name = decoder.decode(blob.subarray(at, at + nameLength));
        at = alignUp(at + nameLength + 1, FDT_TAG_ALIGN);
        const node: FdtNode = { name, props: new Map(), children: [] };
        if (frame === undefined) {
          if (root !== undefined) fail(`a second root node at byte ${tokenAt}`);
          if (name !== "") fail(`the root node is named "${name}" (it must be "")`);
          root = node;
          stack.push({ node, childNames: new Set(), path: "/" });
        } else {
          if (name === "") fail(`${frame.path} has a child with an empty name`);
          if (frame.childNames.has(name)) fail(`${frame.path} has two "${name}" nodes`);
          frame.childNames.add(name);
          frame.node.children.push(node);
          const path = frame.path === "/" ? `/${name}` : `${frame.path}/${name}`;
          stack.push({ node, childNames: new Set(), path });
        }
        break;
      }
      case FDT_END_NODE:
        if (stack.pop() === undefined) fail(`FDT_END_NODE without an open node at byte ${tokenAt}`);
        break;
      case FDT_PROP: {
        const length = u32("a property length");
        const nameOffset = u32("a property name offset");
        if (frame === undefined) fail(`property outside any node at byte ${tokenAt}`);
        if (length > end - at)
          fail(`${frame.path}: property at byte ${tokenAt} runs past the structure block`);
        if (nameOffset >= header.sizeStrings) {
          fail(`${frame.path}: property name offset ${nameOffset} is outside the strings block`);
        }
        const name = cString(header.offStrings + nameOffset, stringsEnd, "property name");
        if (frame.node.children.length > 0) fail(`${frame.path}: property "${name}" after child nodes`);
        if (frame.node.props.has(name)) fail(`${frame.path}: two "${name}" properties`);
        frame.node.props.set(name, blob.slice(at, at + length));
        at = alignUp(at + length, FDT_TAG_ALIGN);
        break;
      }
      case FDT_END:
        if (frame !== undefined) fail(`FDT_END at byte ${tokenAt} with ${frame.path} still open`);
        if (root === undefined) fail("the structure block has no root node");
        return { root, size: at - start };
      default:
        fail(`unknown token 0x${token.toString(16)} at byte ${tokenAt}`);
    }
  }
}

// ---- Reading values ------------------------------------------------------------------------------

/** The value of `name`, failing if the node lacks it. */
export function requireProp(node: FdtNode, name: string): Uint8Array {
  const value = node.props.get(name);
  if (value === undefined) throw new FdtError(`device tree node "${node.name || "/"}" has no "${name}"`);
  return value;
}

function badValue(node: FdtNode, name: string, problem: string): never {
  throw new FdtError(`device tree property ${node.name || "/"}:${name} ${problem}`);
}

/** Big-endian 32-bit cells. */
export function cellsOf(bytes: Uint8Array): number[] {
  if (bytes.length % 4 !== 0)
    throw new FdtError(`a ${bytes.length}-byte value is not a list of 32-bit cells`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(i * 4));
}

/** The strings of a NUL-terminated string list. */
export function stringsOf(bytes: Uint8Array): string[] {
  if (bytes.length === 0) return [];
  if (bytes[bytes.length - 1] !== 0) throw new FdtError("a string list value is not NUL-terminated");
  return decoder.decode(bytes.subarray(0, bytes.length - 1)).split("\0");
}

export function readCells(node: FdtNode, name: string): number[] {
  const bytes = requireProp(node, name);
  if (bytes.length % 4 !== 0) badValue(node, name, `is ${bytes.length} bytes, not a list of cells`);
  return cellsOf(bytes);
}

export function readU32(node: FdtNode, name: string): number {
  const cells = readCells(node, name);
  if (cells.length !== 1) badValue(node, name, `has ${cells.length} cells, expected 1`);
  return cells[0] as number;
}

/** A two-cell value, which must be below 2^53. */
export function readU64(node: FdtNode, name: string): number {
  const cells = readCells(node, name);
  if (cells.length !== 2) badValue(node, name, `has ${cells.length} cells, expected 2`);
  const [high, low] = cells as [number, number];
  if (high >= 0x20_0000) badValue(node, name, "does not fit below 2^53");
  return high * 2 ** 32 + low;
}

export function readStrings(node: FdtNode, name: string): string[] {
  const bytes = requireProp(node, name);
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0)
    badValue(node, name, "is not a NUL-terminated string");
  return stringsOf(bytes);
}

export function readString(node: FdtNode, name: string): string {
  const strings = readStrings(node, name);
  if (strings.length !== 1) badValue(node, name, `holds ${strings.length} strings, expected 1`);
  return strings[0] as string;
}

// ---- Finding nodes -------------------------------------------------------------------------------

/** The node at an absolute path such as "/soc/serial@10000000" ("/" is the root). */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  if (!path.startsWith("/")) return undefined;
  let node: FdtNode | undefined = root;
  for (const part of path.split("/").filter((p) => p !== "")) {
    node = node.children.find((child) => child.name === part);
    if (node === undefined) return undefined;
  }
  return node;
}

/** Every node with its absolute path, parents before children, in blob order. */
export function* walkFdt(root: FdtNode): Generator<{ path: string; node: FdtNode }> {
  const pending: { path: string; node: FdtNode }[] = [{ path: "/", node: root }];
  for (let entry = pending.pop(); entry !== undefined; entry = pending.pop()) {
    yield entry;
    const { path, node } = entry;
    for (let i = node.children.length - 1; i >= 0; i--) {
      const child = node.children[i] as FdtNode;
      pending.push({ path: path === "/" ? `/${child.name}` : `${path}/${child.name}`, node: child });
    }
  }
}

/** The node whose "phandle" property is `phandle`, with its path. */
export function findByPhandle(root: FdtNode, phandle: number): { path: string; node: FdtNode } | undefined {
  for (const entry of walkFdt(root)) {
    const value = entry.node.props.get("phandle");
    if (value !== undefined && value.length === 4 && cellsOf(value)[0] === phandle) return entry;
  }
  return undefined;
}
