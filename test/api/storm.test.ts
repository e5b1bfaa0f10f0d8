/**
 * A connection storm on the daemon's Unix socket: 1,000 connections opened at once, a third sending a
 * valid GET /healthz, a third sending random bytes, a third stalling half-way through a request. Every
 * non-stalling connection must be answered or closed by the daemon; while the stalled ones are still
 * held open, /healthz keeps answering (one client holding a connection does not starve the others);
 * afterwards the daemon is still up. Local only (a Unix socket in a temporary directory), bounded in
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
}

/** Opens one connection and plays `kind`; resolves when the daemon ends it (never for stalls). */
function client(socket: string, kind: Kind, held: Socket[]): Promise<Outcome> {
  return new Promise((done) => {
    const c = connect(socket);
    let answer = "";
    const finish = (ended: Outcome["ended"]) => done({ kind, answer, ended });
    c.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    c.on("end", () => finish("end"));
    c.on("close", () => finish("close"));
    c.on("error", () => finish("error"));
    c.on("connect", () => {
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
    const outcomes = await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) => client(daemon.socket, kinds[i % 3] as Kind, held)),
    );
    try {
      for (const o of outcomes.filter((x) => x.kind === "valid")) {
        assert.match(o.answer, /^HTTP\/1\.1 200 /, `valid request answered ${JSON.stringify(o.answer)}`);
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
