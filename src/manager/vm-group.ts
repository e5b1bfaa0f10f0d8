/**
 * Several VMs in one process, on one thread: each VM's engine runs its own loop, and the engines take
 * turns on the event loop. This is how VMs joined by an in-process virtual switch (src/net/switch.ts)
 * run together.
 *
 * Fairness. An interpreter engine runs its harts for about 10 ms (TURN_MS), then yields with
 * setImmediate; an engine whose harts all wait in WFI sleeps on a timer (at most 50 ms, or until its
 * next timer deadline) and is woken early by a device interrupt, e.g. a frame another VM just sent it.
 * With N busy VMs the thread is shared round-robin in 10 ms turns (setImmediate callbacks run in the
 * order they were queued), so each gets about 1/N of the CPU and waits at most about (N - 1) x 10 ms for
 * its next turn; an idle VM costs nothing and never delays the others for more than one wakeup. Guest
 * time follows the host clock, so a VM's timers fire on time only to within that wait, and its
 * throughput is divided by N: a frame sent from A to a busy B is seen by B's driver on B's next turn
 * (ping round trips of a few tens of milliseconds with two busy VMs). Host I/O (terminal, TAP
 * descriptors, disk completions) runs between turns. No VM can starve another: no engine runs more
 * than one turn without yielding, whatever its guest does. Nothing is prioritized; a VM's share is not
 * configurable.
 */

/** What a VM group needs of an engine (InterpreterEngine has it). */
export interface GroupEngine<R> {
  run(): Promise<R>;
  stop(): void;
}

export interface GroupMember<R> {
  name: string;
  engine: GroupEngine<R>;
}

export class VmGroup<R> {
  private readonly members: GroupMember<R>[] = [];

  /** Adds a VM (its board set up and loaded); names must be unique. */
  add(name: string, engine: GroupEngine<R>): void {
    if (this.members.some((m) => m.name === name))
      throw new RangeError(`VM '${name}' is already in the group`);
    this.members.push({ name, engine });
  }

  get names(): string[] {
    return this.members.map((m) => m.name);
  }

  /**
   * Runs every VM at once until each has ended (its guest stopped, hit a limit, or was stopped with
   * `stop`). If one engine throws, the others are stopped and the error is rethrown once all ended.
   * `onEnd` hears of each VM as it ends (e.g. to stop the rest when one fails).
   */
  async run(onEnd?: (name: string, result: R) => void): Promise<Map<string, R>> {
    const results = new Map<string, R>();
    let failure: { error: unknown } | null = null;
    await Promise.all(
      this.members.map(async (m) => {
        try {
          const result = await m.engine.run();
          results.set(m.name, result);
          onEnd?.(m.name, result);
        } catch (error) {
          failure ??= { error };
          this.stop();
        }
      }),
    );
    if (failure !== null) throw (failure as { error: unknown }).error;
    return results;
  }

  /** Asks every VM to stop at its next slice boundary. */
  stop(): void {
    for (const m of this.members) m.engine.stop();
  }
}
