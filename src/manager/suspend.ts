/**
 * `vireo daemon --suspend-on-exit`: at SIGTERM the running riscv64 VMs are saved as snapshots in the
 * state directory instead of being stopped, and the next daemon continues them from there. A VM's
 * snapshot is complete once its marker file exists (a daemon killed mid-save leaves none, and the
 * half-written directory is discarded); it is used once, then removed.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const MARKER = "suspended";

export class SuspendedVms {
  private readonly root: string;

  constructor(stateDir: string) {
    this.root = resolve(stateDir, "suspended");
  }

  /** Where the VM with this id is saved. */
  dir(id: string): string {
    return join(this.root, id);
  }

  /** Marks a saved snapshot as complete. */
  complete(id: string): void {
    writeFileSync(join(this.dir(id), MARKER), `${new Date().toISOString()}\n`);
  }

  /** The VM's complete snapshot, or null (an incomplete one is removed). */
  find(id: string): string | null {
    const dir = this.dir(id);
    if (existsSync(join(dir, MARKER))) return dir;
    if (existsSync(dir)) this.forget(id);
    return null;
  }

  forget(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}
