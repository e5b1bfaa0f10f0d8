/**
 * Pre-copy live migration of a riscv64 VM over a MigrationChannel (snapshot/migration-wire.ts frames).
 * Source: START, then memory passes while the guest runs — the first sends every non-zero page, each
 * later one the pages the guest dirtied meanwhile (RiscvCpu.startDirtyPass) — until what is left fits
 * the downtime target at the send rate measured so far; then pause, the last pass, the device and hart
 * state, COMPLETE, and wait for the target to say the guest runs there. Auto-converge: a pass that
 * leaves no fewer dirty pages than it sent throttles the guest further. Target: the same frames applied
 * to a board built from the spec, with nothing loaded.
 */
import type { InterpreterEngine } from "../engines/interpreter.js";
import type { VirtBoard } from "../machine/riscv-virt/board.js";
import { decodeMemoryHeader, MemoryDecoder } from "../snapshot/memory-file.js";
import { type Frame, FrameType, frameText, type StartHeader } from "../snapshot/migration-wire.js";
import { decodeState, type SnapshotBody } from "../snapshot/state-file.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives } from "./host.js";
import { migratePrecopy } from "./precopy.js";
import { restoreSections, stateBody } from "./riscv-snapshot.js";
import type { VmSpec } from "./spec.js";
import type { MigrateOptions, MigrationChannel, MigrationResult } from "./vm.js";

export type { MigrationChannel };

/** A migration arriving: its accepted START header and the frames that follow it. */
export interface IncomingMigration {
  start: StartHeader;
  next: () => Promise<Frame | null>;
}

/** What the source drives: its board and engine, and the VM's pause and resume (state changes). */
export interface MigrationSource {
  board: VirtBoard;
  engine: InterpreterEngine;
  spec: VmSpec;
  drives: OpenedDrives;
  pause(): void;
  resume(): void;
}

const THROTTLE_STEP = 0.2;
const MAX_THROTTLE = 0.8;

/**
 * Migrates the running guest of `source` to the target at the other end of `channel` (precopy.ts). Dirty
 * pages come from the store path's tracking (RiscvCpu.startDirtyPass). Auto-converge: a pass that leaves
 * no fewer dirty pages than it sent throttles the guest's instruction budget further.
 */
export function migrateOut(
  source: MigrationSource,
  channel: MigrationChannel,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const { board, engine, spec, drives } = source;
  const cpu = board.cpu;
  let strongest = 0;
  return migratePrecopy(
    {
      arch: "riscv64",
      spec,
      drives,
      ram: cpu.ram,
      // The guest runs on this thread: nothing writes RAM while a pass reads it.
      concurrentWriters: false,
      startDirty: () => {
        cpu.startDirtyPass();
      },
      takeDirty: () => cpu.startDirtyPass() as Uint8Array,
      finalDirty: () => cpu.stopDirtyTracking() as Uint8Array,
      converge: (sent, dirty) => {
        if (dirty < sent) return;
        engine.throttle = Math.min(MAX_THROTTLE, engine.throttle + THROTTLE_STEP);
        strongest = Math.max(strongest, engine.throttle);
      },
      state: () => stateBody(board, spec, drives),
      pause: () => source.pause(),
      resume: () => source.resume(),
      strongestThrottle: () => strongest,
      cleanUp: () => {
        cpu.stopDirtyTracking();
        engine.throttle = 0;
      },
    },
    channel,
    options,
  );
}

/**
 * The target's first half after START was accepted: applies the memory passes to `board` (built from the
 * START spec, nothing loaded, no drives yet) up to the STATE frame, and returns that state. The drives
 * are opened after it: the source hands their locks over just before. Problems are UserErrors.
 */
export async function receivePasses(
  ram: { bytes: Uint8Array; base: number },
  next: () => Promise<Frame | null>,
  arch = "riscv64",
): Promise<SnapshotBody> {
  let decoder: MemoryDecoder | null = null;
  for (;;) {
    const frame = await next();
    if (frame === null) throw new UserError(`${WHAT}: the source closed the connection mid-way`);
    switch (frame.type) {
      case FrameType.PASS_BEGIN: {
        if (decoder !== null) throw new UserError(`${WHAT}: a pass began inside another`);
        const header = decodeMemoryHeader(frame.payload, `${WHAT} pass`);
        if (header.base !== ram.base) throw new UserError(`${WHAT}: RAM at another address`);
        decoder = new MemoryDecoder(ram.bytes, header, `${WHAT} pass`);
        break;
      }
      case FrameType.PASS_DATA:
        if (decoder === null) throw new UserError(`${WHAT}: pages outside a pass`);
        decoder.push(frame.payload);
        break;
      case FrameType.PASS_END:
        if (decoder === null) throw new UserError(`${WHAT}: the end of a pass that did not begin`);
        decoder.finish();
        decoder = null;
        break;
      case FrameType.STATE: {
        if (decoder !== null) throw new UserError(`${WHAT}: state inside a memory pass`);
        const { arch: stateArch, body } = decodeState(frame.payload, `${WHAT} state`);
        if (stateArch !== arch) throw new UserError(`${WHAT}: the state of an ${stateArch} VM`);
        return body;
      }
      case FrameType.ABANDON:
        throw new UserError(`${WHAT}: the source abandoned it: ${frameText(frame)}`);
      default:
        throw new UserError(`${WHAT}: unexpected frame type ${frame.type} from the source`);
    }
  }
}

/** The second half: the board's devices attached on `drives`, restores the state and waits for COMPLETE. */
export async function finishMigration(
  board: VirtBoard,
  body: SnapshotBody,
  start: StartHeader,
  spec: VmSpec,
  drives: OpenedDrives,
  next: () => Promise<Frame | null>,
): Promise<void> {
  checkIncomingDrives(start, spec, drives);
  restoreSections(board, body, `${WHAT} state`, false);
  await awaitComplete(next);
}

/** Refuses drives here whose size is not the source's. */
export function checkIncomingDrives(start: StartHeader, spec: VmSpec, drives: OpenedDrives): void {
  spec.drives.forEach((d, i) => {
    const theirs = start.drives.find((x) => x.id === d.id);
    const size = drives.backends[i]?.sizeBytes;
    if (theirs !== undefined && theirs.sizeBytes !== size) {
      throw new UserError(`${d.path}: drive ${d.id} is ${size} bytes, the source's is ${theirs.sizeBytes}`);
    }
  });
}

/** The source's last word: COMPLETE (anything else is a UserError). */
export async function awaitComplete(next: () => Promise<Frame | null>): Promise<void> {
  const frame = await next();
  if (frame === null) throw new UserError(`${WHAT}: the source closed the connection before COMPLETE`);
  if (frame.type === FrameType.ABANDON)
    throw new UserError(`${WHAT}: the source abandoned it: ${frameText(frame)}`);
  if (frame.type !== FrameType.COMPLETE)
    throw new UserError(`${WHAT}: expected COMPLETE, got frame type ${frame.type}`);
}

const WHAT = "migration";
