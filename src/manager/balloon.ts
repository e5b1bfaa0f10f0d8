/**
 * A running VM's balloon as the API shows it, in bytes: the same figures whether the device lives in
 * this thread or in a VM's worker (which calls these functions itself and posts the result).
 */
import { BALLOON_PAGE } from "../devices/virtio/balloon/reclaimer.js";
import { type BalloonStats, VirtioBalloon } from "../devices/virtio/balloon/virtio-balloon.js";
import type { VmDevice } from "../vm/vm.js";

export interface BalloonFigures {
  /** What the host asks the guest to hold in the balloon. */
  targetBytes: number;
  /** What the guest's driver says it holds. */
  actualBytes: number;
  /** What the device counts as inflated (and not deflated since). */
  inflatedBytes: number;
  peakActualBytes: number;
  peakInflatedBytes: number;
  /** Host memory given back behind ballooned pages. */
  reclaimedBytes: number;
  /** Device resets by the guest's driver (each empties the balloon). */
  resets: number;
  /** How the host gives pages back ("madvise", "counting"...). */
  reclaimer: string;
}

export function balloonOf(devices: readonly VmDevice[]): VirtioBalloon | null {
  for (const d of devices) if (d.device instanceof VirtioBalloon) return d.device;
  return null;
}

export function balloonFigures(balloon: VirtioBalloon): BalloonFigures {
  const c = balloon.counters;
  return {
    targetBytes: balloon.targetBytes,
    actualBytes: balloon.actualBytes,
    inflatedBytes: balloon.inflatedPages * BALLOON_PAGE,
    peakActualBytes: c.peakActual * BALLOON_PAGE,
    peakInflatedBytes: c.peakInflatedPages * BALLOON_PAGE,
    reclaimedBytes: c.reclaimedBytes,
    resets: c.resets,
    reclaimer: balloon.reclaimerKind,
  };
}

/** Sets the target (when given) and answers the figures; null when the VM has no balloon. */
export function balloonRequest(
  devices: readonly VmDevice[],
  targetBytes: number | null,
): BalloonFigures | null {
  const balloon = balloonOf(devices);
  if (balloon === null) return null;
  if (targetBytes !== null) balloon.setTargetBytes(targetBytes);
  return balloonFigures(balloon);
}

/** What the memory governor reads of one balloon each round: its figures and the guest's statistics. */
export interface BalloonPoll {
  figures: BalloonFigures;
  /** The guest's latest statistics (updates 0: none arrived yet). */
  guest: BalloonStats;
}

/**
 * The balloon's figures and the guest's latest statistics, and asks the guest for fresh ones, so that
 * the next poll reads figures at most one round old; null when the VM has no balloon.
 */
export function balloonPoll(devices: readonly VmDevice[]): BalloonPoll | null {
  const balloon = balloonOf(devices);
  if (balloon === null) return null;
  const guest = balloon.stats();
  balloon.requestStats();
  return { figures: balloonFigures(balloon), guest };
}
