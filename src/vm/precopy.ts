/**
 * The source side of pre-copy live migration, for every engine: START, memory passes while the guest
 * runs — the first sends every non-zero page, each later one the pages the engine's dirty tracking says
 * the guest wrote meanwhile — until what is left fits the downtime target at the send rate measured so
 * far (or maxPasses ran); then pause, the disks handed over, the last pass, the engine's state, COMPLETE,
 * and wait for the target to say the guest runs there. What differs per engine (where dirty pages come
 * from, how to slow a guest down, what its state is) is a `PrecopyEngine`.
 */
import { encodeMemoryHeader, memoryPayload, nonZeroPages, PAGE_BYTES } from "../snapshot/memory-file.js";
import { encodeFrame, encodeStart, FrameType, frameText, textFrame } from "../snapshot/migration-wire.js";
import { encodeState, type SnapshotBody } from "../snapshot/state-file.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives } from "./host.js";
import type { VmSpec } from "./spec.js";
import type { MigrateOptions, MigrationChannel, MigrationResult } from "./vm.js";

const DEFAULT_DOWNTIME_MS = 300;
const DEFAULT_MAX_PASSES = 30;
/** How long the source waits for each answer of the target: a target that hangs must not hang it. */
const REPLY_TIMEOUT_MS = 60_000;

/** What one engine gives the pre-copy loop. */
export interface PrecopyEngine {
  arch: string;
  spec: VmSpec;
  drives: OpenedDrives;
  ram: { bytes: Uint8Array; base: number };
  /**
   * Guest RAM is written by other threads while a pass reads it (KVM vCPUs): each run is then copied
   * once, and that copy is both CRC'd and sent.
   */
  concurrentWriters: boolean;
  /** Starts tracking: every page written from now on is in the next `takeDirty()`. */
  startDirty(): void;
  /** The pages written since the last call (or since `startDirty`), and tracking goes on. */
  takeDirty(): Uint8Array;
  /** With the guest paused: the last dirty pages; tracking ends. */
  finalDirty(): Uint8Array;
  /** After a pass that sent `sent` pages and left `dirty`: the engine may slow the guest (auto-converge). */
  converge?(sent: number, dirty: number): void;
  /** The pages of the last pass, given the dirty ones (an engine whose devices write RAM untracked widens it). */
  lastPass?(dirty: Uint8Array): Uint8Array;
  /** The paused guest's state (devices, vCPUs). */
  state(): SnapshotBody;
  pause(): void;
  resume(): void;
  /** How far converge() slowed the guest at most (0 to 1), for the result. */
  strongestThrottle(): number;
  /** Always called at the end, success or not: tracking off, the guest at full speed, logs released. */
  cleanUp(): void;
}

export function countPages(bitmap: Uint8Array): number {
  let pages = 0;
  for (const byte of bitmap) for (let b = byte; b !== 0; b &= b - 1) pages++;
  return pages;
}

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
async function sendPass(channel: MigrationChannel, e: PrecopyEngine, bitmap: Uint8Array): Promise<number> {
  const header = encodeMemoryHeader({
    compression: "none",
    pageBytes: PAGE_BYTES,
    pages: e.ram.bytes.length / PAGE_BYTES,
    base: e.ram.base,
  });
  let bytes = 0;
  const send = async (frame: Uint8Array) => {
    bytes += frame.length;
    await channel.send(frame);
  };
  await send(encodeFrame(FrameType.PASS_BEGIN, header));
  // Without other writers, encodeFrame copies each run out of RAM before anything else runs, so the CRC
  // and the bytes on the wire agree even when the guest writes the page again before the transport sends
  // it (that write dirties it for a later pass).
  for (const chunk of memoryPayload(e.ram.bytes, bitmap, e.concurrentWriters)) {
    await send(encodeFrame(FrameType.PASS_DATA, chunk));
  }
  await send(encodeFrame(FrameType.PASS_END));
  return bytes;
}

/**
 * Migrates the running guest of `e` to the target at the other end of `channel`. Resolves once the
 * target runs it (the caller ends this VM); on any failure the guest runs on here at full speed, ABANDON
 * (with the reason) goes to the target where the stream still works, and it rejects.
 */
export async function migratePrecopy(
  e: PrecopyEngine,
  channel: MigrationChannel,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const { spec, drives } = e;
  const downtimeMs = options.downtimeMs ?? DEFAULT_DOWNTIME_MS;
  const maxPasses = options.maxPasses ?? DEFAULT_MAX_PASSES;
  const started = performance.now();
  let paused = false;
  let bytes = 0;
  let pages = 0;
  let passes = 0;
  let handedOver = false;
  try {
    const start = encodeStart(
      spec,
      spec.drives.map((d, i) => ({ id: d.id, sizeBytes: drives.backends[i]?.sizeBytes ?? 0 })),
    );
    bytes += start.length;
    await channel.send(start);
    await expectReply(channel, FrameType.ACCEPT, "after START");
    e.startDirty();
    let bitmap = nonZeroPages(e.ram.bytes);
    let sendMs = 0;
    let sentBytes = 0;
    for (;;) {
      const t = performance.now();
      const sent = await sendPass(channel, e, bitmap);
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
      bitmap = e.takeDirty();
      const dirty = countPages(bitmap);
      const rate = sentBytes / Math.max(sendMs, 1e-3);
      if ((dirty * PAGE_BYTES) / rate <= downtimeMs || passes >= maxPasses) break;
      e.converge?.(sentPages, dirty);
    }
    const pausedAt = performance.now();
    e.pause();
    paused = true;
    // The disks go to the target (on this machine it must lock them) once their last write landed; the
    // writes' completions touch RAM, so this comes before the last dirty bitmap is taken.
    if (drives.handOver !== undefined) {
      handedOver = true;
      await drives.handOver();
    }
    const last = e.finalDirty();
    for (let i = 0; i < last.length; i++) bitmap[i] = (bitmap[i] as number) | (last[i] as number);
    if (e.lastPass !== undefined) bitmap = e.lastPass(bitmap);
    pages += countPages(bitmap);
    bytes += await sendPass(channel, e, bitmap);
    passes++;
    const state = encodeFrame(FrameType.STATE, encodeState(e.arch, e.state()));
    bytes += state.length;
    await channel.send(state);
    await channel.send(encodeFrame(FrameType.COMPLETE));
    await expectReply(channel, FrameType.RUNNING, "before the guest ran there");
    const now = performance.now();
    const throttle = e.strongestThrottle();
    e.cleanUp();
    return { passes, bytes, pages, totalMs: now - started, downtimeMs: now - pausedAt, throttle };
  } catch (err) {
    e.cleanUp();
    const reason = err instanceof Error ? err.message : String(err);
    await channel.send(textFrame(FrameType.ABANDON, reason)).catch(() => {});
    if (handedOver && !(await takeBack(drives))) {
      // The target may have the disks now: two guests writing one image is worse than a stopped one.
      throw new UserError(
        `migration failed (${reason}), and another process holds a disk of this VM now: it stays paused`,
      );
    }
    if (paused) e.resume();
    throw err instanceof UserError ? err : new UserError(`migration failed: ${reason}`);
  } finally {
    channel.close();
  }
}
