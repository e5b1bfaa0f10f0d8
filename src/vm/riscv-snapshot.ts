/**
 * Snapshot and restore of a riscv64 VM: walks the board (its own record, CLINT, PLIC, UART, RTC, the
 * virtio-mmio transports with their devices, the harts) into sections of a state file, and guest RAM into
 * a memory file of its non-zero pages; restore does the same backwards into a board freshly built from
 * the stored spec, with RAM first (virtio queues walk their held chains in it).
 */
import { restoreHart, snapshotHart } from "../cpu/riscv/hart-snapshot.js";
import type { VirtBoard } from "../machine/riscv-virt/board.js";
import { type Compression, MemoryDecoder, type MemoryHeader } from "../snapshot/memory-file.js";
import type { SnapshotBody, SnapshotSection } from "../snapshot/state-file.js";
import type { SnapshotWrite } from "../snapshot/store.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives } from "./host.js";
import { type SnapshotInfo, snapshotFiles, stateBodyOf } from "./snapshot-files.js";
import type { VmSpec } from "./spec.js";

interface Restorable {
  snapshot(): unknown;
  restore(state: unknown): void;
}

/** What a snapshot holds, for reports. */
export type { SnapshotInfo } from "./snapshot-files.js";

/** A snapshot opened for restore: its decoded state and its memory payload, not yet read. */
export interface RestoreSource {
  /** Names the snapshot in errors (its directory). */
  what: string;
  body: SnapshotBody;
  memoryHeader: MemoryHeader;
  memoryPayload: AsyncIterable<Uint8Array>;
  /**
   * A clone: the VM may have another vsock CID than the saved one (its spec's); the device takes the
   * new one and tells the guest's driver with a transport reset, on which Linux reads the CID again.
   */
  clone?: boolean;
}

/** The board's parts in the order restore needs them: board (clock) first, harts last. */
function parts(board: VirtBoard): { name: string; kind: string; part: Restorable }[] {
  const list: { name: string; kind: string; part: Restorable }[] = [
    { name: "board", kind: "virt-board", part: board },
    { name: "clint", kind: "clint", part: board.clint },
    { name: "plic", kind: "plic", part: board.plic },
    { name: "uart0", kind: "uart16550", part: board.uart },
    { name: "rtc", kind: "goldfish-rtc", part: board.rtc },
  ];
  for (const slot of board.virtio.used()) {
    const transport = board.virtio.at(slot);
    if (transport !== null) list.push({ name: `virtio${slot}`, kind: "virtio-mmio", part: transport });
  }
  board.cpu.harts.forEach((h, i) => {
    list.push({
      name: `hart${i}`,
      kind: "hart",
      part: { snapshot: () => snapshotHart(h), restore: (s) => restoreHart(h, s) },
    });
  });
  return list;
}

/** The state of a paused VM's board (every device and hart), as a snapshot's state file holds it. */
export function stateBody(board: VirtBoard, spec: VmSpec, drives: OpenedDrives): SnapshotBody {
  const sections: SnapshotSection[] = parts(board).map(({ name, kind, part }) => {
    const state = part.snapshot();
    return { name, kind, version: (state as { version: number }).version, state };
  });
  return stateBodyOf(spec, drives, sections);
}

/** The files of a snapshot of a paused VM; the memory payload reads RAM as it is written. */
export function snapshotRiscv(
  board: VirtBoard,
  spec: VmSpec,
  drives: OpenedDrives,
  compression: Compression,
): { files: SnapshotWrite; info: SnapshotInfo } {
  return snapshotFiles("riscv64", stateBody(board, spec, drives), board.cpu.ram, compression);
}

/** Refuses drives whose size is not the snapshot's (the guest's file systems would not fit them). */
export function checkDrives(source: RestoreSource, spec: VmSpec, drives: OpenedDrives): void {
  spec.drives.forEach((d, i) => {
    const saved = source.body.drives.find((x) => x.id === d.id);
    const size = drives.backends[i]?.sizeBytes;
    if (saved === undefined) throw new UserError(`${source.what}: the snapshot has no drive ${d.id}`);
    if (size !== saved.sizeBytes) {
      throw new UserError(
        `${d.path}: drive ${d.id} is ${size} bytes, the snapshot's was ${saved.sizeBytes}: refusing to restore`,
      );
    }
  });
}

/**
 * Fills a board built from the snapshot's spec (devices attached, nothing loaded): RAM, then every
 * section. A malformed section or memory image is a UserError naming it.
 */
export async function restoreRiscv(board: VirtBoard, source: RestoreSource): Promise<void> {
  const { what, body } = source;
  const decoder = new MemoryDecoder(board.cpu.ram.bytes, source.memoryHeader, what);
  if (source.memoryHeader.base !== board.cpu.ram.base) throw new UserError(`${what}: RAM at another address`);
  for await (const chunk of source.memoryPayload) decoder.push(chunk);
  decoder.finish();
  restoreSections(board, body, what, source.clone === true);
}

/**
 * Restores every section of `body` into the board (its RAM already in place); a malformed or missing
 * section is a UserError naming it. `clone`: see RestoreSource.clone.
 */
export function restoreSections(board: VirtBoard, body: SnapshotBody, what: string, clone: boolean): void {
  const list = parts(board);
  const known = new Set(list.map((p) => p.name));
  for (const s of body.sections) {
    if (!known.has(s.name)) throw new UserError(`${what}: section ${s.name} has no device here`);
  }
  for (const { name, kind, part } of list) {
    const s = body.sections.find((x) => x.name === name);
    if (s === undefined) throw new UserError(`${what}: no section ${name}`);
    if (s.kind !== kind) throw new UserError(`${what}: section ${name} is a ${s.kind}, expected ${kind}`);
    let state = s.state;
    const vsock = board.vsock;
    if (
      clone &&
      kind === "virtio-mmio" &&
      vsock !== null &&
      board.virtio.at(slotOf(name))?.device === vsock
    ) {
      const device = (state as { device?: unknown } | null)?.device;
      if (typeof device === "object" && device !== null) {
        const saved = device as { guestCid?: unknown; resetPending?: unknown };
        const formerCid = saved.guestCid;
        // Only a new CID needs the TRANSPORT_RESET (the guest reads its CID again on it); the guest's
        // old connections get their RSTs either way, which the event could make it ignore.
        const resetPending = saved.resetPending === true || formerCid !== vsock.guestCid;
        state = {
          ...(state as object),
          device: { ...device, guestCid: vsock.guestCid, resetPending, formerCid },
        };
      }
    }
    try {
      part.restore(state);
    } catch (e) {
      // Records come from a file: whatever a device's check throws, it is that file's fault.
      throw new UserError(`${what}: section ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  board.cpu.dropCaches();
  // The guest's vsock driver learns now that its connections (and for a clone, its CID) are gone, so
  // that the first host connection finds it reset rather than racing the reset.
  board.vsock?.restored();
}

function slotOf(name: string): number {
  return Number(name.slice("virtio".length));
}
