/**
 * Pre-copy live migration of an x86_64 (KVM) VM, on the riscv64 protocol and frames (riscv-migrate.ts):
 * START, memory passes while the guest runs — the first every non-zero page, each later one the pages
 * KVM's dirty log (dirty-log.ts) says the guest wrote meanwhile — until what is left fits the downtime
 * target; then pause, the last pass, the x86 state (x86-snapshot.ts sections), COMPLETE.
 *
 * KVM logs only the guest's writes. Virtio devices write guest RAM from this process, so when the VM has
 * any, the last pass (the guest paused, the devices idle) sends every non-zero page instead of the dirty
 * ones: correct, at the cost of a longer downtime. The KVM engine has no instruction budget, so there is
 * no auto-converge either: a guest that dirties faster than the passes go is paused after maxPasses.
 */
import type { KvmEngine } from "../engines/kvm/engine.js";
import { DirtyLog } from "../hypervisor/kvm/dirty-log.js";
import type { X86MicroVm } from "../machine/x86-microvm/board.js";
import { encodeMemoryHeader, memoryPayload, nonZeroPages, PAGE_BYTES } from "../snapshot/memory-file.js";
import { encodeFrame, encodeStart, FrameType, frameText, textFrame } from "../snapshot/migration-wire.js";
import { encodeState } from "../snapshot/state-file.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives } from "./host.js";
import { countPages, expectReply, takeBack } from "./riscv-migrate.js";
import type { VmSpec } from "./spec.js";
import type { VirtioSetup } from "./virtio.js";
import type { MigrateOptions, MigrationChannel, MigrationResult } from "./vm.js";
import { ramView, stateBodyX86 } from "./x86-snapshot.js";

export interface X86MigrationSource {
  board: X86MicroVm;
  engine: KvmEngine;
  spec: VmSpec;
  drives: OpenedDrives;
  virtio: VirtioSetup;
  pause(): void;
  resume(): void;
}

const DEFAULT_DOWNTIME_MS = 300;
const DEFAULT_MAX_PASSES = 30;

async function sendPass(channel: MigrationChannel, ram: Uint8Array, bitmap: Uint8Array): Promise<number> {
  const header = encodeMemoryHeader({
    compression: "none",
    pageBytes: PAGE_BYTES,
    pages: ram.length / PAGE_BYTES,
    base: 0,
  });
  let bytes = 0;
  const send = async (frame: Uint8Array) => {
    bytes += frame.length;
    await channel.send(frame);
  };
  await send(encodeFrame(FrameType.PASS_BEGIN, header));
  // The vCPUs write RAM while a pass reads it: each run is copied once, and that copy is both CRC'd and
  // sent. A page written again after its copy is dirty in KVM's log and goes again in the next pass.
  for (const chunk of memoryPayload(ram, bitmap, true)) await send(encodeFrame(FrameType.PASS_DATA, chunk));
  await send(encodeFrame(FrameType.PASS_END));
  return bytes;
}

/**
 * Migrates the running guest of `source` to the target at the other end of `channel`; resolves once it
 * runs there. On failure the guest runs on here, ABANDON goes to the target, and it rejects.
 */
export async function migrateOutX86(
  source: X86MigrationSource,
  channel: MigrationChannel,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  const { board, engine, spec, drives } = source;
  const downtimeMs = options.downtimeMs ?? DEFAULT_DOWNTIME_MS;
  const maxPasses = options.maxPasses ?? DEFAULT_MAX_PASSES;
  const started = performance.now();
  let paused = false;
  let bytes = 0;
  let pages = 0;
  let passes = 0;
  let handedOver = false;
  let log: DirtyLog | null = null;
  try {
    const ram = ramView(board);
    log = new DirtyLog(board.vm, board.ram);
    const start = encodeStart(
      spec,
      spec.drives.map((d, i) => ({ id: d.id, sizeBytes: drives.backends[i]?.sizeBytes ?? 0 })),
    );
    bytes += start.length;
    await channel.send(start);
    await expectReply(channel, FrameType.ACCEPT, "after START");
    log.start();
    let bitmap = nonZeroPages(ram);
    let sendMs = 0;
    let sentBytes = 0;
    for (;;) {
      const t = performance.now();
      const sent = await sendPass(channel, ram, bitmap);
      sendMs += performance.now() - t;
      sentBytes += sent;
      bytes += sent;
      passes++;
      const early = channel.poll();
      if (early !== null) {
        if (early.type === FrameType.REFUSE) {
          throw new UserError(`migration refused by the target: ${frameText(early)}`);
        }
        throw new UserError(
          `migration: unexpected frame type ${early.type} from the target during the passes`,
        );
      }
      pages += countPages(bitmap);
      bitmap = log.take();
      const rate = sentBytes / Math.max(sendMs, 1e-3);
      if ((countPages(bitmap) * PAGE_BYTES) / rate <= downtimeMs || passes >= maxPasses) break;
    }
    const pausedAt = performance.now();
    source.pause();
    paused = true;
    if (drives.handOver !== undefined) {
      handedOver = true;
      await drives.handOver();
    }
    const last = log.take();
    for (let i = 0; i < last.length; i++) bitmap[i] = (bitmap[i] as number) | (last[i] as number);
    // Pages the devices wrote are in no log: with devices, everything that is not zero goes again.
    if (source.virtio.devices.length > 0) bitmap = nonZeroPages(ram);
    pages += countPages(bitmap);
    bytes += await sendPass(channel, ram, bitmap);
    passes++;
    const state = encodeFrame(
      FrameType.STATE,
      encodeState("x86_64", stateBodyX86(board, engine, spec, drives)),
    );
    bytes += state.length;
    await channel.send(state);
    await channel.send(encodeFrame(FrameType.COMPLETE));
    await expectReply(channel, FrameType.RUNNING, "before the guest ran there");
    const now = performance.now();
    return { passes, bytes, pages, totalMs: now - started, downtimeMs: now - pausedAt, throttle: 0 };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    await channel.send(textFrame(FrameType.ABANDON, reason)).catch(() => {});
    if (handedOver && !(await takeBack(drives))) {
      throw new UserError(
        `migration failed (${reason}), and another process holds a disk of this VM now: it stays paused`,
      );
    }
    if (paused) source.resume();
    throw e instanceof UserError ? e : new UserError(`migration failed: ${reason}`);
  } finally {
    log?.release();
    channel.close();
  }
}
