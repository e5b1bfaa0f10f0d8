// The guest agent client against a fake agent behind a fake vsock socket (CONNECT <port> → OK): sync
// past leftovers, calls answered in order, errors, and a reply of garbage or a stream closed mid-reply
// failing that call only. The real qemu-ga is exercised by test/api/exec.test.ts.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestAgent } from "../../src/manager/guest-agent.js";
import { JsonObjectSplitter, QgaClient, QgaError, QgaLinkError } from "../../src/manager/qga-client.js";
import { after, describe, test } from "../support/test.js";

const dir = mkdtempSync(join(tmpdir(), "vireo-qga-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Answer = (request: { execute: string; arguments?: Record<string, unknown> }, socket: Socket) => void;

/** A fake agent: answers each request with `answer`; a sync is answered as qemu-ga does (0xFF first). */
function fakeAgent(
  name: string,
  answer: Answer,
  refusePort = false,
): Promise<{ path: string; server: Server }> {
  const path = join(dir, name);
  const server = createServer((socket) => {
    let connected = false;
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      if (!connected) {
        const nl = buffered.indexOf("\n");
        if (nl < 0) return;
        if (refusePort) {
          socket.destroy();
          return;
        }
        connected = true;
        buffered = buffered.slice(nl + 1);
        // The vsock socket's answer, then leftovers of an earlier client that the sync must skip.
        socket.write('OK 1073741824\n{"return": {}}\n{"ret');
      }
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl < 0) return;
        const request = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (request.execute === "guest-sync-delimited") {
          socket.write(
            Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${request.arguments.id}}\n`)]),
          );
        } else answer(request, socket);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve({ path, server })));
}

describe("QGA client", () => {
  test("the splitter finds objects across chunks, with braces inside strings", () => {
    const s = new JsonObjectSplitter();
    const text = '{"return": {"a": "}{\\"x"}}\n{"error": {"class": "GenericError", "desc": "no"}}';
    const out: string[] = [];
    for (const c of Buffer.from(text)) out.push(...s.push(Buffer.from([c])));
    assert.deepEqual(
      out.map((t) => JSON.parse(t)),
      [{ return: { a: '}{"x' } }, { error: { class: "GenericError", desc: "no" } }],
    );
    assert.throws(() => new JsonObjectSplitter().push(Buffer.from("garbage")), QgaLinkError);
  });

  test("sync skips leftovers; calls are answered in order; an agent error is a QgaError", async () => {
    const { path, server } = await fakeAgent("ok.sock", (req, socket) => {
      if (req.execute === "guest-ping") socket.write('{"return": {}}\n');
      else if (req.execute === "guest-info") socket.write('{"return": {"version": "10.0"}}\n');
      else
        socket.write(
          `{"error": {"class": "CommandNotFound", "desc": "The command ${req.execute} has not been found"}}\n`,
        );
    });
    try {
      const client = await QgaClient.connect(path, 1234, { timeoutMs: 5000 });
      const [ping, info, bad] = await Promise.allSettled([
        client.call("guest-ping"),
        client.call<{ version: string }>("guest-info"),
        client.call("guest-nope"),
      ]);
      assert.deepEqual(ping, { status: "fulfilled", value: {} });
      assert.deepEqual(info, { status: "fulfilled", value: { version: "10.0" } });
      assert.ok(bad.status === "rejected" && bad.reason instanceof QgaError);
      assert.equal((bad.reason as QgaError).errorClass, "CommandNotFound");
      client.close();
    } finally {
      server.close();
    }
  });

  test("garbage fails that call only: the stream is synced again and the next call answered", async () => {
    let n = 0;
    const { path, server } = await fakeAgent("garbage.sock", (_req, socket) => {
      n++;
      if (n === 1) socket.write("this is not json\n");
      else if (n === 2) socket.write('{"neither": 1}\n');
      else socket.write(`{"return": ${n}}\n`);
    });
    try {
      const client = await QgaClient.connect(path, 1234, { timeoutMs: 5000 });
      await assert.rejects(client.call("guest-ping"), QgaLinkError);
      await assert.rejects(client.call("guest-ping"), /neither a return nor an error/);
      assert.equal(await client.call("guest-ping"), 3);
      assert.equal(client.closed, false);
      client.close();
    } finally {
      server.close();
    }
  });

  test("a close mid-reply fails the call on the wire and those queued; GuestAgent connects anew", async () => {
    let n = 0;
    const { path, server } = await fakeAgent("close.sock", (_req, socket) => {
      n++;
      if (n === 1) {
        socket.write('{"return": {"pid": ');
        socket.destroy();
      } else socket.write('{"return": {"pid": 42}}\n');
    });
    try {
      const agent = new GuestAgent(path);
      const first = agent.call("guest-exec", { path: "true" });
      const queued = agent.call("guest-ping");
      await assert.rejects(first, /closed mid-reply/);
      await assert.rejects(queued, QgaLinkError);
      assert.deepEqual(await agent.call("guest-exec", { path: "true" }), { pid: 42 });
      agent.close();
    } finally {
      server.close();
    }
  });

  test("a port nobody listens on, a missing socket, and a silent agent are link errors", async () => {
    const { path, server } = await fakeAgent("refuse.sock", () => {}, true);
    try {
      await assert.rejects(QgaClient.connect(path, 1234, { timeoutMs: 5000 }), /refused vsock port 1234/);
      await assert.rejects(
        QgaClient.connect(join(dir, "none.sock"), 1234, { timeoutMs: 5000 }),
        QgaLinkError,
      );
    } finally {
      server.close();
    }
    const silent = await fakeAgent("silent.sock", () => {});
    try {
      const client = await QgaClient.connect(silent.path, 1234, { timeoutMs: 5000 });
      await assert.rejects(
        client.call("guest-ping", undefined, { timeoutMs: 200 }),
        /no answer to guest-ping/,
      );
      assert.equal(client.closed, true);
    } finally {
      silent.server.close();
    }
  });

  test("copyIn: a count other than the chunk's fails the copy (never retried)", async () => {
    const { path, server } = await fakeAgent("write.sock", (req, socket) => {
      if (req.execute === "guest-file-open") socket.write('{"return": 5}\n');
      else if (req.execute === "guest-file-write") socket.write('{"return": {"count": 3, "eof": false}}\n');
      else socket.write('{"return": {}}\n');
    });
    try {
      const agent = new GuestAgent(path);
      await assert.rejects(
        agent.copyIn("/tmp/f", [Buffer.from("0123456789")]),
        /wrote 3 bytes of a 10-byte chunk/,
      );
      agent.close();
    } finally {
      server.close();
    }
  });

  test("exec: a missing program is exit code 127 with the agent's message; output comes back", async () => {
    const { path, server } = await fakeAgent("exec.sock", (req, socket) => {
      if (req.execute === "guest-exec") {
        if (req.arguments?.path === "nope") {
          socket.write(
            '{"error": {"class": "GenericError", "desc": "Failed to execute child process \\"nope\\" (No such file or directory)"}}\n',
          );
        } else socket.write('{"return": {"pid": 7}}\n');
      } else if (req.execute === "guest-exec-status") {
        const out = Buffer.from("hello\n").toString("base64");
        socket.write(`{"return": {"exited": true, "exitcode": 3, "out-data": "${out}"}}\n`);
      }
    });
    try {
      const agent = new GuestAgent(path);
      const missing = await agent.exec({ argv: ["nope"], timeoutMs: 5000 });
      assert.equal(missing.exitCode, 127);
      assert.match(missing.stderr.toString(), /No such file or directory/);
      const r = await agent.exec({ argv: ["echo", "hello"], timeoutMs: 5000, outputCap: 3 });
      assert.equal(r.exitCode, 3);
      assert.equal(r.stdout.toString(), "hel");
      assert.equal(r.truncated, true);
      agent.close();
    } finally {
      server.close();
    }
  });
});
