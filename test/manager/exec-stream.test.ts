/**
 * The streamed exec's bookkeeping against a fake agent that plays the guest: files in memory, the
 * wrapper's feeder taking one bell line at a time at its own pace (a pipe written by qemu-ga shows
 * nothing before guest-file-flush, as with stdio), the command echoing its stdin to stdout. Stdin of
 * any shape comes out whole and in order, never more than the window of chunk files waits in the
 * guest, and the folder and every handle are gone at the end; a kill and a timeout reach the group.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type ExecAgent, ExecStream } from "../../src/manager/exec-stream.js";
import type { ExecRequest, ExecResult } from "../../src/manager/guest-agent.js";
import { QgaError } from "../../src/manager/qga-client.js";
import { describe, test } from "../support/test.js";

const WINDOW = 16;

class FakeGuest implements ExecAgent {
  readonly files = new Map<string, Buffer>();
  private readonly handles = new Map<number, { path: string; at: number; unflushed: Buffer[] }>();
  private nextHandle = 1;
  private proc: { dir: string; exited: boolean; exitcode?: number; signal?: number } | null = null;
  maxWaiting = 0;
  kills = 0;

  constructor(
    private readonly consumerDelayMs: number,
    private readonly readsStdin = true,
  ) {}

  get openHandles(): number {
    return this.handles.size;
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const [program, flag, script] = req.argv;
    const done = (exitCode: number): ExecResult => ({
      exitCode,
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      truncated: false,
      timedOut: false,
    });
    if (program === "/bin/rm") {
      const dir = req.argv[2] as string;
      for (const path of [...this.files.keys()]) if (path.startsWith(`${dir}/`)) this.files.delete(path);
      return done(0);
    }
    assert.equal(program, "/bin/sh");
    assert.equal(flag, "-c");
    if (script?.includes("kill -9")) {
      this.kills++;
      if (this.proc !== null && !this.proc.exited) Object.assign(this.proc, { exited: true, signal: 9 });
      return done(0);
    }
    const dir = req.argv[4] as string;
    for (const name of ["bell", "in", "out", "err"]) this.files.set(`${dir}/${name}`, Buffer.alloc(0));
    return done(0);
  }

  async call<T>(command: string, args: Record<string, unknown> = {}): Promise<T> {
    await new Promise((r) => setImmediate(r));
    const handle = args.handle as number;
    switch (command) {
      case "guest-file-open": {
        const path = args.path as string;
        if (!this.files.has(path)) {
          if (args.mode === "r")
            throw new QgaError("GenericError", `failed to open file '${path}': No such file or directory`);
          this.files.set(path, Buffer.alloc(0));
          this.maxWaiting = Math.max(this.maxWaiting, this.waiting());
        }
        const h = this.nextHandle++;
        this.handles.set(h, { path, at: 0, unflushed: [] });
        return h as T;
      }
      case "guest-file-write": {
        const f = this.handles.get(handle) as { path: string; unflushed: Buffer[] };
        const bytes = Buffer.from(args["buf-b64"] as string, "base64");
        if (f.path.endsWith("/bell")) f.unflushed.push(bytes);
        else this.files.set(f.path, Buffer.concat([this.files.get(f.path) as Buffer, bytes]));
        return { count: bytes.length, eof: false } as T;
      }
      case "guest-file-flush": {
        const f = this.handles.get(handle) as { path: string; unflushed: Buffer[] };
        this.files.set(f.path, Buffer.concat([this.files.get(f.path) as Buffer, ...f.unflushed.splice(0)]));
        return {} as T;
      }
      case "guest-file-close":
        if (!this.handles.delete(handle)) throw new QgaError("GenericError", "no such handle");
        return {} as T;
      case "guest-file-read": {
        const f = this.handles.get(handle) as { path: string; at: number };
        const data = (this.files.get(f.path) ?? Buffer.alloc(0)).subarray(
          f.at,
          f.at + (args.count as number),
        );
        f.at += data.length;
        return { count: data.length, "buf-b64": data.toString("base64"), eof: data.length === 0 } as T;
      }
      case "guest-exec": {
        const dir = (args.arg as string[])[4] as string;
        this.proc = { dir, exited: false };
        this.feed(dir, 0);
        return { pid: 4242 } as T;
      }
      case "guest-exec-status": {
        const p = this.proc as NonNullable<typeof this.proc>;
        return { exited: p.exited, exitcode: p.exitcode, signal: p.signal } as T;
      }
      default:
        throw new Error(`unexpected ${command}`);
    }
  }

  /** Stdin chunk files written and not consumed yet. */
  private waiting(): number {
    return [...this.files.keys()].filter((p) => /\/in\.\d+$/.test(p)).length;
  }

  /** The wrapper's feeder and a `cat`: one bell line per turn, at the consumer's pace. */
  private feed(dir: string, line: number): void {
    setTimeout(() => {
      const p = this.proc;
      if (p === null || p.exited) return;
      const lines = (this.files.get(`${dir}/bell`) as Buffer).toString().split("\n");
      const next = lines[line];
      if (next === undefined || lines.length - 1 <= line || !this.readsStdin) {
        this.feed(dir, line);
        return;
      }
      if (next === "end") {
        Object.assign(p, { exited: true, exitcode: 0 });
        return;
      }
      const path = `${dir}/in.${next}`;
      const out = `${dir}/out`;
      this.files.set(out, Buffer.concat([this.files.get(out) as Buffer, this.files.get(path) as Buffer]));
      this.files.delete(path);
      this.feed(dir, line + 1);
    }, this.consumerDelayMs);
  }
}

describe("the streamed exec against a fake guest", () => {
  test("stdin in any pieces comes out whole and in order; at most the window waits in the guest", {
    timeout: 120_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 70_000 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        async (pieces, delay, paced) => {
          const guest = new FakeGuest(delay);
          const out: Buffer[] = [];
          const exec = await ExecStream.start(
            guest,
            { argv: ["cat"], timeoutMs: 600_000 },
            {
              stdout: (b) => {
                out.push(b);
              },
              stderr: () => {},
            },
          );
          for (const piece of pieces) {
            exec.write(piece);
            if (paced) await new Promise((r) => setTimeout(r, 1));
          }
          exec.endStdin();
          const end = await exec.done;
          assert.deepEqual(end, { exitCode: 0, timedOut: false, killed: false });
          assert.ok(Buffer.concat(out).equals(Buffer.concat(pieces)));
          assert.ok(guest.maxWaiting <= WINDOW, `${guest.maxWaiting} chunk files waited at once`);
          assert.equal(guest.files.size, 0, "the folder is removed");
          assert.equal(guest.openHandles, 0, "every handle is closed");
        },
      ),
      { numRuns: 15 },
    );
  });

  test("a command that never reads: the window holds stdin back; a kill ends it", {
    timeout: 30_000,
  }, async () => {
    const guest = new FakeGuest(0, false);
    const exec = await ExecStream.start(
      guest,
      { argv: ["sleep", "1000"], timeoutMs: 600_000 },
      {
        stdout: () => {},
        stderr: () => {},
      },
    );
    let killed = false;
    try {
      for (let i = 0; i < 3 * WINDOW; i++) {
        exec.write(Buffer.alloc(300 * 1024, i));
        await new Promise((r) => setTimeout(r, 1));
      }
      // The pump waits on in.1 to go; a fresh look at the guest finds the window full, not more.
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(guest.maxWaiting, WINDOW);
      exec.kill();
      killed = true;
      const end = await exec.done;
      assert.equal(end.killed, true);
      assert.equal(end.signal, 9);
      assert.equal(guest.kills, 1);
      assert.equal(guest.files.size, 0);
      assert.equal(guest.openHandles, 0);
    } finally {
      // A failed check must not leave the fake's command running (its timers would keep the test alive).
      if (!killed) {
        exec.kill();
        await exec.done;
      }
    }
  });

  test("past its timeout the group is killed and the end says so", { timeout: 30_000 }, async () => {
    const guest = new FakeGuest(0, false);
    const exec = await ExecStream.start(
      guest,
      { argv: ["sleep", "1000"], timeoutMs: 20 },
      {
        stdout: () => {},
        stderr: () => {},
      },
    );
    const end = await exec.done;
    assert.deepEqual([end.timedOut, end.killed, end.signal, guest.kills], [true, false, 9, 1]);
  });
});
