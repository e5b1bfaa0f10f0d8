/**
 * The state file of a snapshot: a 48-byte header (magic, format semver, arch, body length, CRC-64 of the
 * body) and a JSON body holding the VmSpec the VM was made from, what its disks were, and one section per
 * device and per hart, each carrying the version of its own record.
 */
import { UserError } from "../util/errors.js";
import { Crc64 } from "./crc64.js";
import { checkVersion, FORMAT_MAJOR, FORMAT_MINOR, FORMAT_PATCH } from "./version.js";

export const STATE_MAGIC = "VIREOSNP";
export const STATE_HEADER_BYTES = 48;
const ARCH_BYTES = 16;

export interface SnapshotSection {
  /** Unique in the snapshot: "hart0", "uart0", "virtio1", "board"... */
  name: string;
  /** What restores it: "hart", "uart16550", "virtio-mmio"... */
  kind: string;
  /** The record's own version (its `version` field). */
  version: number;
  state: unknown;
}

/** A disk as the snapshot saw it: restore opens it by path (or an override) and checks its size. */
export interface SnapshotDrive {
  id: string;
  path: string;
  sizeBytes: number;
}

export interface SnapshotBody {
  /** The VmSpec the VM was created from (validated again on restore). */
  spec: unknown;
  drives: SnapshotDrive[];
  sections: SnapshotSection[];
  /** ISO time the snapshot was taken. */
  takenAt: string;
}

export interface DecodedState {
  arch: string;
  version: { major: number; minor: number; patch: number };
  body: SnapshotBody;
}

export function encodeState(arch: string, body: SnapshotBody): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(body));
  const out = new Uint8Array(STATE_HEADER_BYTES + json.length);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(STATE_MAGIC), 0);
  view.setUint16(8, FORMAT_MAJOR, true);
  view.setUint16(10, FORMAT_MINOR, true);
  view.setUint16(12, FORMAT_PATCH, true);
  const archBytes = new TextEncoder().encode(arch);
  if (archBytes.length > ARCH_BYTES) throw new RangeError(`arch name too long: ${arch}`);
  out.set(archBytes, 16);
  view.setUint32(32, json.length % 2 ** 32, true);
  view.setUint32(36, Math.floor(json.length / 2 ** 32), true);
  const [lo, hi] = new Crc64().update(json).digest();
  view.setUint32(40, lo, true);
  view.setUint32(44, hi, true);
  out.set(json, STATE_HEADER_BYTES);
  return out;
}

/**
 * Reads a state file; `what` names it in errors. Every problem is a UserError saying what is wrong: not a
 * snapshot, a newer major format, truncated, a CRC mismatch, a body that is not the expected shape.
 */
export function decodeState(bytes: Uint8Array, what: string): DecodedState {
  if (bytes.length < STATE_HEADER_BYTES) throw new UserError(`${what}: truncated (no complete header)`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== STATE_MAGIC) throw new UserError(`${what}: not a Vireo snapshot state file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = {
    major: view.getUint16(8, true),
    minor: view.getUint16(10, true),
    patch: view.getUint16(12, true),
  };
  checkVersion(what, version.major, version.minor, version.patch);
  const archField = bytes.subarray(16, 16 + ARCH_BYTES);
  const end = archField.indexOf(0);
  const arch = new TextDecoder().decode(archField.subarray(0, end < 0 ? ARCH_BYTES : end));
  const length = view.getUint32(32, true) + view.getUint32(36, true) * 2 ** 32;
  const body = bytes.subarray(STATE_HEADER_BYTES);
  if (body.length < length)
    throw new UserError(`${what}: truncated (${body.length} of ${length} body bytes)`);
  if (body.length > length) throw new UserError(`${what}: ${body.length - length} bytes after the body`);
  const [lo, hi] = new Crc64().update(body).digest();
  if (lo !== view.getUint32(40, true) || hi !== view.getUint32(44, true)) {
    throw new UserError(`${what}: CRC-64 mismatch: the file is corrupt`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (e) {
    throw new UserError(`${what}: body is not JSON: ${(e as Error).message}`);
  }
  return { arch, version, body: checkBody(parsed, what) };
}

function checkBody(value: unknown, what: string): SnapshotBody {
  const bad = (why: string): never => {
    throw new UserError(`${what}: ${why}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) bad("body is not an object");
  const b = value as Record<string, unknown>;
  if (typeof b.spec !== "object" || b.spec === null) bad("no VM spec");
  if (typeof b.takenAt !== "string") bad("no takenAt time");
  if (!Array.isArray(b.drives)) bad("no drive list");
  for (const d of b.drives as unknown[]) {
    const drive = d as Record<string, unknown> | null;
    if (
      typeof drive !== "object" ||
      drive === null ||
      typeof drive.id !== "string" ||
      typeof drive.path !== "string" ||
      !Number.isSafeInteger(drive.sizeBytes)
    ) {
      bad("a drive entry needs id, path and sizeBytes");
    }
  }
  if (!Array.isArray(b.sections)) bad("no section list");
  const names = new Set<string>();
  for (const s of b.sections as unknown[]) {
    const section = s as Record<string, unknown> | null;
    if (
      typeof section !== "object" ||
      section === null ||
      typeof section.name !== "string" ||
      typeof section.kind !== "string" ||
      !Number.isSafeInteger(section.version)
    ) {
      bad("a section needs name, kind and version");
    }
    const name = (section as { name: string }).name;
    if (names.has(name)) bad(`section ${name} appears twice`);
    names.add(name);
  }
  return value as SnapshotBody;
}

/** The section named `name`; a UserError when the snapshot has none or one of another kind. */
export function section(body: SnapshotBody, name: string, kind: string, what: string): SnapshotSection {
  const s = body.sections.find((x) => x.name === name);
  if (s === undefined) throw new UserError(`${what}: no section ${name}`);
  if (s.kind !== kind) throw new UserError(`${what}: section ${name} is a ${s.kind}, not a ${kind}`);
  return s;
}
