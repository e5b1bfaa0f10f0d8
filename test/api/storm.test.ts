/**
 * A connection storm on the daemon's Unix socket: 1,000 connections opened at once, a third sending a
 * valid GET /healthz, a third sending random bytes, a third stalling half-way through a request. Every
 * non-stalling connection must be answered or closed by the daemon; while the stalled ones are still
 * held open, /healthz keeps answering (one client holding a connection does not starve the others);
 * afterwards the daemon is still up. The daemon is frozen for the storm's first 300 ms, so its listen
 * backlog overflows: those connects fail with EAGAIN and the clients try again. Local only (a Unix socket in a temporary directory), bounded in
 * count and time.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "../support/test.js";
import { api, type Daemon, startDaemon, tempDir } from "./support.js";

const CONNECTIONS = 1000;

type Kind = "valid" | "garbage" | "stall";

interface Outcome {
  kind: Kind;
  /** Bytes the daemon sent back. */
  answer: string;
  /** How the connection ended: "end"/"close" from the daemon, "error" (reset), "open" if held. */
  ended: "end" | "close" | "error" | "open";
  /** The socket error's code, when it ended in one. */
  code?: string;
  /** Whether the connection was ever established (a full listen backlog refuses some). */
  connected: boolean;
}

/** Connect attempts the kernel refused with EAGAIN (the listen backlog was full) and that were retried. */
let refused = 0;

/**
 * Opens one connection and plays `kind`; resolves when the daemon ends it (at once for stalls). A full
 * listen backlog makes connect() fail with EAGAIN before the daemon sees the connection: that is the
 * kernel's back-pressure, and the client tries again (bounded), as a real client would.
 */
function client(socket: string, kind: Kind, held: Socket[], tries = 1000): Promise<Outcome> {
  return new Promise((done) => {
    const c = connect(socket);
    let answer = "";
    let connected = false;
    let code: string | undefined;
    let retried = false;
    const finish = (ended: Outcome["ended"]) => {
      if (!retried) done({ kind, answer, ended, connected, ...(code === undefined ? {} : { code }) });
    };
    c.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    c.on("end", () => finish("end"));
    c.on("close", () => finish("close"));
    c.on("error", (e: NodeJS.ErrnoException) => {
      if (!connected && e.code === "EAGAIN" && tries > 0) {
        refused++;
        retried = true; // this socket's "close" follows; the retry's outcome is the one that counts
        setTimeout(() => client(socket, kind, held, tries - 1).then(done), 10);
        return;
      }
      code = e.code;
      finish("error");
    });
    c.on("connect", () => {
      connected = true;
      if (kind === "valid") c.end("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      else if (kind === "garbage") {
        // Random bytes with a line end, so the parser has a complete (bad) request line to reject.
        c.end(Buffer.concat([randomBytes((1 + Math.random() * 300) | 0), Buffer.from("\r\n\r\n")]));
      } else {
        c.write(
          "POST /vms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        );
        held.push(c);
        finish("open");
      }
    });
  });
}

describe("daemon connection storm", () => {
  let dir: string;
  let daemon: Daemon;

  before(async () => {
    dir = tempDir();
    daemon = await startDaemon(dir);
  });

  after(async () => {
    if (daemon.child.exitCode === null) {
      daemon.child.kill("SIGKILL");
      await daemon.exited;
    }
  });

  test("1,000 concurrent connections: each answered or closed, the daemon stays up", {
    timeout: 120_000,
  }, async () => {
    const kinds: Kind[] = ["valid", "garbage", "stall"];
    const held: Socket[] = [];
    // The storm arrives while the daemon is frozen (SIGSTOP), so the listen backlog fills for certain and
    // everything queued there meets the daemon at once when it thaws.
    daemon.child.kill("SIGSTOP");
    setTimeout(() => daemon.child.kill("SIGCONT"), 300);
    const outcomes = await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) => client(daemon.socket, kinds[i % 3] as Kind, held)),
    );
    process.stderr.write(
      `storm: ${refused} connect attempts refused with EAGAIN (backlog full) and retried\n`,
    );
    try {
      for (const o of outcomes) assert.ok(o.connected, `never connected: ${JSON.stringify(o)}`);
      for (const o of outcomes.filter((x) => x.kind === "valid")) {
        assert.match(o.answer, /^HTTP\/1\.1 200 /, `valid request answered ${JSON.stringify(o)}`);
        assert.match(o.answer, /"ok"/);
      }
      for (const o of outcomes.filter((x) => x.kind === "garbage")) {
        // Either a 400 (Node's parser answers malformed requests) or a plain close; never a 2xx/5xx.
        if (o.answer !== "")
          assert.match(o.answer, /^HTTP\/1\.1 4\d\d /, JSON.stringify(o.answer.slice(0, 80)));
        assert.notEqual(o.ended, "open");
      }
      assert.equal(held.length, Math.floor(CONNECTIONS / 3));
      // With ~333 half-sent requests still held, the daemon serves others.
      const health = await api(daemon.socket, "GET", "/healthz");
      assert.equal(health.status, 200);
      assert.equal(daemon.child.exitCode, null, "daemon exited");
    } finally {
      for (const c of held) c.destroy();
    }
    const afterwards = await api(daemon.socket, "GET", "/healthz");
    assert.equal(afterwards.status, 200);
    assert.deepEqual(afterwards.json, (await api(daemon.socket, "GET", "/healthz")).json);
    assert.equal((await api(daemon.socket, "GET", "/vms")).status, 200);
    assert.equal(daemon.child.exitCode, null, "daemon exited");
    assert.doesNotMatch(daemon.log(), /internal error/);
  });
});
