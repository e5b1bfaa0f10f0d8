/** What every engine's snapshot writes the same way: the state body around its sections, and the files. */
import {
  type Compression,
  encodeMemoryHeader,
  memoryPayload,
  nonZeroPages,
  PAGE_BYTES,
} from "../snapshot/memory-file.js";
import { encodeState, type SnapshotBody, type SnapshotSection } from "../snapshot/state-file.js";
import type { SnapshotWrite } from "../snapshot/store.js";
import type { OpenedDrives } from "./host.js";
import { countPages } from "./precopy.js";
import type { VmSpec } from "./spec.js";

/** What a snapshot holds, for the caller's report. */
export interface SnapshotInfo {
  /** Non-zero pages written. */
  pages: number;
  ramBytes: number;
  sections: number;
}

/** A state body: the spec, the drives linked by path with their sizes (checked at restore), the sections. */
export function stateBodyOf(spec: VmSpec, drives: OpenedDrives, sections: SnapshotSection[]): SnapshotBody {
  return {
    spec,
    drives: spec.drives.map((d, i) => ({
      id: d.id,
      path: d.path,
      sizeBytes: drives.backends[i]?.sizeBytes ?? 0,
    })),
    sections,
    takenAt: new Date().toISOString(),
  };
}

/** The files of a snapshot of a paused VM; the memory payload reads RAM as it is written. */
export function snapshotFiles(
  arch: string,
  body: SnapshotBody,
  ram: { bytes: Uint8Array; base: number },
  compression: Compression,
): { files: SnapshotWrite; info: SnapshotInfo } {
  const bitmap = nonZeroPages(ram.bytes);
  const pages = countPages(bitmap);
  return {
    files: {
      state: encodeState(arch, body),
      memoryHeader: encodeMemoryHeader({
        compression,
        pageBytes: PAGE_BYTES,
        pages: ram.bytes.length / PAGE_BYTES,
        base: ram.base,
      }),
      memoryPayload: memoryPayload(ram.bytes, bitmap),
      compression,
    },
    info: { pages, ramBytes: pages * PAGE_BYTES, sections: body.sections.length },
  };
}
