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
import {
  decodeMemoryHeader,
  encodeMemoryHeader,
  MemoryDecoder,
  memoryPayload,
  nonZeroPages,
  PAGE_BYTES,
} from "../snapshot/memory-file.js";
import {
  encodeFrame,
  encodeStart,
  type Frame,
  FrameType,
  frameText,
  type StartHeader,
  textFrame,
} from "../snapshot/migration-wire.js";
import { decodeState, encodeState, type SnapshotBody } from "../snapshot/state-file.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives } from "./host.js";
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

const DEFAULT_DOWNTIME_MS = 300;
const DEFAULT_MAX_PASSES = 30;
const THROTTLE_STEP = 0.2;
const MAX_THROTTLE = 0.8;

export function countPages(bitmap: Uint8Array): number {
  let pages = 0;
  for (const byte of bitmap) for (let b = byte; b !== 0; b &= b - 1) pages++;
  return pages;
}

/** How long the source waits for each answer of the target: a target that hangs must not hang it. */
const REPLY_TIMEOUT_MS = 60_000;

/** Waits for the target's answer; a REFUSE or a closed stream is a UserError with the target's reason. */
export async function expectReply(channel: MigrationChannel, wanted: FrameType, step: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new UserError(`migration: no answer from the target ${step} in ${REPLY_TIMEOUT_MS / 1000} s`)),
      REPLY_TIMEOUT_MS,
    );
  });
  const frame = await Promise.race([channel.next(), silent]).finally(() => clearTimeout(timer));
  if (frame === null) throw new UserError(`migration: the target closed the connection ${step}`);
  if (frame.type === FrameType.REFUSE)
    throw new UserError(`migration refused by the target: ${frameText(frame)}`);
  if (frame.type !== wanted)
    throw new UserError(`migration: unexpected frame type ${frame.type} from the target ${step}`);
}

/** Takes the drive locks back, giving a target that is letting go of them a few moments. */
export async function takeBack(drives: OpenedDrives): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    if (drives.takeBack?.() !== false) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Sends one memory pass: the pages of `bitmap`; returns the bytes sent. */
async function sendPass(channel: MigrationChannel, board: VirtBoard, bitmap: Uint8Array): Promise<number> {
  const ram = board.cpu.ram;
  const header = encodeMemoryHeader({
    compression: "none",
    pageBytes: PAGE_BYTES,
    pages: ram.size / PAGE_BYTES,
    base: ram.base,
  });
  let bytes = 0;
  const send = async (frame: Uint8Array) => {
    bytes += frame.length;
    await channel.send(frame);
  };
  await send(encodeFrame(FrameType.PASS_BEGIN, header));
  // encodeFrame copies each run out of RAM at once, so the CRC and the bytes on the wire agree even when
  // the guest writes the page again before the transport sends it (that write dirties it for a later pass).
  for (const chunk of memoryPayload(ram.bytes, bitmap)) await send(encodeFrame(FrameType.PASS_DATA, chunk));
  await send(encodeFrame(FrameType.PASS_END));
  return bytes;
}

/**
 * Migrates the running guest of `source` to the target at the other end of `channel`. Resolves once the
 * target runs it (the caller ends this VM); on any failure the guest runs on here, throttle lifted,
 * ABANDON (with the reason) goes to the target where the stream still works, and it rejects.
 */
export async function migrateOut(
  source: MigrationSource,
  channel: MigrationChannel,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const { board, engine, spec, drives } = source;
  const cpu = board.cpu;
  const downtimeMs = options.downtimeMs ?? DEFAULT_DOWNTIME_MS;
  const maxPasses = options.maxPasses ?? DEFAULT_MAX_PASSES;
  const started = performance.now();
  let paused = false;
  let bytes = 0;
  let pages = 0;
  let passes = 0;
  let strongest = 0;
  let handedOver = false;
  try {
    const start = encodeStart(
      spec,
      spec.drives.map((d, i) => ({ id: d.id, sizeBytes: drives.backends[i]?.sizeBytes ?? 0 })),
    );
    bytes += start.length;
    await channel.send(start);
    await expectReply(channel, FrameType.ACCEPT, "after START");
    cpu.startDirtyPass();
    let bitmap = nonZeroPages(cpu.ram.bytes);
    let sendMs = 0;
    let sentBytes = 0;
    for (;;) {
      const t = performance.now();
      const sent = await sendPass(channel, board, bitmap);
      sendMs += performance.now() - t;
      sentBytes += sent;
      bytes += sent;
      passes++;
      // A target that gave up (it could not build the VM) says so at once: stop sending to it.
      const early = channel.poll();
      if (early !== null) {
        if (early.type === FrameType.REFUSE) {
          throw new UserError(`migration refused by the target: ${frameText(early)}`);
        }
        throw new UserError(
          `migration: unexpected frame type ${early.type} from the target during the passes`,
        );
      }
      const sentPages = countPages(bitmap);
      pages += sentPages;
      bitmap = cpu.startDirtyPass() as Uint8Array;
      const dirty = countPages(bitmap);
      const rate = sentBytes / Math.max(sendMs, 1e-3);
      if ((dirty * PAGE_BYTES) / rate <= downtimeMs || passes >= maxPasses) break;
      if (dirty >= sentPages) {
        engine.throttle = Math.min(MAX_THROTTLE, engine.throttle + THROTTLE_STEP);
        strongest = Math.max(strongest, engine.throttle);
      }
    }
    const pausedAt = performance.now();
    source.pause();
    paused = true;
    // The disks go to the target (on this machine it must lock them) once their last write landed; the
    // writes' completions touch RAM, so this comes before the last dirty bitmap is taken.
    if (drives.handOver !== undefined) {
      handedOver = true;
      await drives.handOver();
    }
    const last = cpu.stopDirtyTracking() as Uint8Array;
    for (let i = 0; i < last.length; i++) bitmap[i] = (bitmap[i] as number) | (last[i] as number);
    pages += countPages(bitmap);
    bytes += await sendPass(channel, board, bitmap);
    passes++;
    const state = encodeFrame(FrameType.STATE, encodeState("riscv64", stateBody(board, spec, drives)));
    bytes += state.length;
    await channel.send(state);
    await channel.send(encodeFrame(FrameType.COMPLETE));
    await expectReply(channel, FrameType.RUNNING, "before the guest ran there");
    const now = performance.now();
    engine.throttle = 0;
    return { passes, bytes, pages, totalMs: now - started, downtimeMs: now - pausedAt, throttle: strongest };
  } catch (e) {
    cpu.stopDirtyTracking();
    engine.throttle = 0;
    const reason = e instanceof Error ? e.message : String(e);
    await channel.send(textFrame(FrameType.ABANDON, reason)).catch(() => {});
    if (handedOver && !(await takeBack(drives))) {
      // The target may have the disks now: two guests writing one image is worse than a stopped one.
      throw new UserError(
        `migration failed (${reason}), and another process holds a disk of this VM now: it stays paused`,
      );
    }
    if (paused) source.resume();
    throw e instanceof UserError ? e : new UserError(`migration failed: ${reason}`);
  } finally {
    channel.close();
  }
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
