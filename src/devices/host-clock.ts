/**
 * The host's time as a VM's devices see it, given to a board rather than read by it, so that a guest
 * can run on a clock a test sets, or on whatever a host other than Node keeps time with.
 */
export interface HostClock {
  /** Milliseconds from any origin, never going back: what guest timers count (CLINT mtime, `time`). */
  monotonicMs(): number;
  /** Wall-clock time in nanoseconds since the Unix epoch: what the guest's RTC reads. */
  wallNanos(): number;
}

/** The clock of any JavaScript host (Node, a browser worker): performance.now() and Date.now(). */
export const platformClock: HostClock = {
  monotonicMs: () => performance.now(),
  wallNanos: () => Date.now() * 1e6,
};
