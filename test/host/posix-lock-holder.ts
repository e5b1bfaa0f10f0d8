import { type ChildProcessByStdio, spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";

const libc = join(
  resolve(dirname(fileURLToPath(import.meta.url)), "../../.."),
  "dist/src/hypervisor/libc.js",
);

export interface LockHolder {
  child: ChildProcessByStdio<Writable, Readable, null>;
  /** What the holder said once it tried: "LOCKED", or "FAILED <errno>". */
  said: Promise<string>;
  /** Ends the holder (its lock goes with it). */
  release(): void;
}

/**
 * Another process holding a classic POSIX fcntl(F_SETLK) lock on `path`, as any other program would
 * take it (a read lock on a read-only open, a write lock on a read-write one); it holds until released.
 */
export function posixLockHolder(path: string, type: "read" | "write"): LockHolder {
  const [mode, lock] = type === "read" ? ["r", "F_RDLCK"] : ["r+", "F_WRLCK"];
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { openSync } from "node:fs";
       import { fcntlLock, F_SETLK, ${lock} } from ${JSON.stringify(libc)};
       const r = fcntlLock(openSync(process.argv[1], "${mode}"), F_SETLK, { type: ${lock}, start: 0, length: 0 });
       console.log(typeof r === "number" ? "FAILED " + r : "LOCKED");
       process.stdin.resume();`,
      path,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const said = new Promise<string>((done) => child.stdout.once("data", (d) => done(`${d}`.trim())));
  return { child, said, release: () => child.stdin.end() };
}
