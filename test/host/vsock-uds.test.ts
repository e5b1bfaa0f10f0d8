/**
 * The Unix-socket backend of virtio-vsock against a hand-driven guest (test/devices/virtio's vsock
 * harness): host clients through PATH and `CONNECT <port>`, guest connections to PATH_<port>, data and
 * half-closes both ways, flow control with a slow guest, refusals.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Op, Shutdown } from "../../src/devices/virtio/vsock/protocol.js";
import { FIRST_HOST_PORT } from "../../src/devices/virtio/vsock/virtio-vsock.js";
import { socketPathProblem, UdsVsockBackend } from "../../src/host/vsock-uds.js";
import { Guest, type Packet } from "../devices/virtio/vsock-harness.js";
import { after, describe, it } from "../support/test.js";

const scratch = mkdtempSync(join(tmpdir(), "vireo-vsock-uds-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

async function setup() {
  const path = join(scratch, `v${n++}.sock`);
  const backend = await UdsVsockBackend.listen(path);
  const g = Guest.start({ backend });
  g.post(32);
  return { path, backend, g };
}

/** Waits (letting I/O run) until `check` returns something other than undefined/false. */
async function until<T>(what: string, check: () => T | undefined | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A client socket that collects what it reads. */
function client(
  path: string,
): Promise<{ s: Socket; got: () => string; closed: () => boolean; ended: () => boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ path, allowHalfOpen: true });
    let data = "";
    let closed = false;
    let ended = false;
    s.on("data", (d) => {
      data += d.toString("latin1");
    });
    s.on("end", () => {
      ended = true;
    });
    s.on("close", () => {
      closed = true;
    });
    s.once("error", reject);
    s.once("connect", () => resolve({ s, got: () => data, closed: () => closed, ended: () => ended }));
  });
}

/** Collects guest packets until one matches. */
function packets(g: Guest) {
  const seen: Packet[] = [];
  return {
    seen,
    next: (what: string, match: (p: Packet) => boolean) =>
      until(what, () => {
        seen.push(...g.receive());
        const i = seen.findIndex(match);
        return i < 0 ? undefined : (seen.splice(i, 1)[0] as Packet);
      }),
  };
}

describe("virtio-vsock over Unix domain sockets", () => {
  it("host-initiated: CONNECT <port>, OK <hostport>, bytes both ways, half-close, clean close", async () => {
    const { path, backend, g } = await setup();
    const c = await client(path);
    c.s.write("CONNECT 52\nearly bytes");
    const rx = packets(g);
    const req = await rx.next("REQUEST", (p) => p.op === Op.REQUEST);
    assert.equal(req.dstPort, 52);
    assert.equal(req.srcPort, FIRST_HOST_PORT);
    assert.equal(c.got(), "", "no OK before the guest accepted");
    g.op(Op.RESPONSE, 52, req.srcPort);
    await until("OK", () => c.got().startsWith(`OK ${FIRST_HOST_PORT}\n`));
    const rw = await rx.next("early bytes", (p) => p.op === Op.RW);
    assert.equal(Buffer.from(rw.payload).toString(), "early bytes");
    g.op(Op.RW, 52, req.srcPort, {}, new Uint8Array(Buffer.from("from the guest\n")));
    await until("guest data", () => c.got() === `OK ${FIRST_HOST_PORT}\nfrom the guest\n`);
    c.s.end();
    const shut = await rx.next("SHUTDOWN", (p) => p.op === Op.SHUTDOWN);
    assert.equal(shut.flags, Shutdown.SEND);
    g.op(Op.SHUTDOWN, 52, req.srcPort, { flags: Shutdown.BOTH });
    await rx.next("RST", (p) => p.op === Op.RST);
    await until("client closed", () => c.ended() || c.closed());
    assert.equal(g.device.openConnections, 0);
    await backend.close();
    assert.throws(() => statSync(path), "close() removes the socket file");
  });

  it("a client may send its request and end its side before the guest answers", async () => {
    const { path, backend, g } = await setup();
    const c = await client(path);
    c.s.end("CONNECT 60\nping");
    const rx = packets(g);
    const req = await rx.next("REQUEST", (p) => p.op === Op.REQUEST);
    await new Promise((r) => setTimeout(r, 20));
    g.op(Op.RESPONSE, 60, req.srcPort);
    const rw = await rx.next("ping", (p) => p.op === Op.RW);
    assert.equal(Buffer.from(rw.payload).toString(), "ping");
    const shut = await rx.next("SHUTDOWN", (p) => p.op === Op.SHUTDOWN);
    assert.equal(shut.flags, Shutdown.SEND);
    g.op(Op.RW, 60, req.srcPort, {}, new Uint8Array(Buffer.from("pong")));
    g.op(Op.SHUTDOWN, 60, req.srcPort, { flags: Shutdown.BOTH });
    await rx.next("RST", (p) => p.op === Op.RST);
    await until("reply and end", () => c.ended() && c.got() === `OK ${req.srcPort}\npong`);
    await backend.close();
  });

  it("guest-initiated: forwarded to PATH_<port>; RST when nothing listens there", async () => {
    const { path, backend, g } = await setup();
    let server: Server | null = null;
    const received: string[] = [];
    let peer: Socket | null = null;
    server = createServer({ allowHalfOpen: true }, (s) => {
      peer = s;
      s.on("data", (d) => received.push(d.toString()));
      s.on("end", () => s.end("bye\n"));
    });
    await new Promise<void>((r) => server?.listen(`${path}_5000`, r));
    const rx = packets(g);
    g.op(Op.REQUEST, 777, 5000);
    const resp = await rx.next("RESPONSE", (p) => p.op === Op.RESPONSE);
    assert.equal(resp.dstPort, 777);
    g.op(Op.RW, 777, 5000, {}, new Uint8Array(Buffer.from("ping\n")));
    await until("data at the listener", () => received.join("") === "ping\n");
    (peer as Socket | null)?.write("pong\n");
    const rw = await rx.next("pong", (p) => p.op === Op.RW);
    assert.equal(Buffer.from(rw.payload).toString(), "pong\n");
    // The guest shuts its sending side: the listener sees end of stream and says bye.
    g.op(Op.SHUTDOWN, 777, 5000, { flags: Shutdown.SEND });
    const bye = await rx.next("bye", (p) => p.op === Op.RW);
    assert.equal(Buffer.from(bye.payload).toString(), "bye\n");
    const shut = await rx.next("SHUTDOWN", (p) => p.op === Op.SHUTDOWN);
    assert.equal(shut.flags & Shutdown.SEND, Shutdown.SEND);
    g.op(Op.RST, 777, 5000);
    assert.equal(g.device.openConnections, 0);

    g.op(Op.REQUEST, 778, 5001);
    const rst = await rx.next("RST", (p) => p.op === Op.RST);
    assert.equal(rst.dstPort, 778);
    assert.equal(g.device.stats.connectionsRefused, 1);
    await new Promise<void>((r) => server?.close(() => r()));
    await backend.close();
  });

  it("flow control: 1 MiB each way through a guest with a small buffer", async () => {
    const { path, backend, g } = await setup();
    const size = 1 << 20;
    const up = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
    const down = new Uint8Array(size).map((_, i) => (i * 17 + 3) & 0xff);
    const c = await client(path);
    const chunks: Buffer[] = [];
    c.s.removeAllListeners("data");
    c.s.on("data", (d: Buffer) => chunks.push(d));
    c.s.write("CONNECT 9\n");
    const rx = packets(g);
    const req = await rx.next("REQUEST", (p) => p.op === Op.REQUEST);
    const guestBuf = 16 * 1024;
    g.op(Op.RESPONSE, 9, req.srcPort, { bufAlloc: guestBuf });
    c.s.write(down);
    // The guest reads what comes and gives credit back; it also sends its own data within the host's credit.
    let got = 0;
    const gotBytes: number[] = [];
    let sent = 0;
    let hostBuf = 0;
    let hostFwd = 0;
    await until(
      "both streams",
      () => {
        for (const p of g.receive()) {
          hostBuf = p.bufAlloc;
          hostFwd = p.fwdCnt;
          if (p.op === Op.RW) {
            got += p.len;
            for (const b of p.payload) gotBytes.push(b);
          }
          assert.notEqual(p.op, Op.RST);
        }
        g.post(16);
        g.op(Op.CREDIT_UPDATE, 9, req.srcPort, { bufAlloc: guestBuf, fwdCnt: got });
        const credit = hostBuf - (sent - hostFwd);
        if (sent < size && credit > 0) {
          const k = Math.min(credit, 4096, size - sent);
          g.op(Op.RW, 9, req.srcPort, { bufAlloc: guestBuf, fwdCnt: got }, up.subarray(sent, sent + k));
          sent += k;
        }
        const total = chunks.reduce((a, b) => a + b.length, 0);
        return got === size && total >= size + `OK ${req.srcPort}\n`.length;
      },
      60_000,
    );
    const all = Buffer.concat(chunks);
    const ok = `OK ${req.srcPort}\n`;
    assert.equal(all.subarray(0, ok.length).toString(), ok);
    assert.ok(Buffer.from(all.subarray(ok.length)).equals(Buffer.from(up)), "guest → client bytes");
    assert.ok(Buffer.from(gotBytes).equals(Buffer.from(down)), "client → guest bytes");
    assert.equal(g.device.stats.txProtocol, 0);
    c.s.destroy();
    await backend.close();
  });

  it("a host write larger than the device's buffer, to a guest with credit and buffers: every byte once", async () => {
    // The device delivers inside a partial write and calls writable() from there: the backend must not
    // hand over the same bytes again (seen as a corrupted 1 MiB copy by the guest agent). A small device
    // buffer makes every socket chunk a partial write.
    const path = join(scratch, `v${n++}.sock`);
    const backend = await UdsVsockBackend.listen(path);
    const g = Guest.start({ backend, bufferSize: 4096 });
    g.post(32);
    const size = 1 << 20;
    const down = new Uint8Array(size).map((_, i) => (i * 13 + 7) & 0xff);
    const c = await client(path);
    c.s.write("CONNECT 9\n");
    const rx = packets(g);
    const req = await rx.next("REQUEST", (p) => p.op === Op.REQUEST);
    g.op(Op.RESPONSE, 9, req.srcPort, { bufAlloc: 4 * size });
    g.post(300);
    c.s.write(down);
    const gotBytes: number[] = [];
    await until(
      "every byte",
      () => {
        for (const p of g.receive()) {
          assert.notEqual(p.op, Op.RST);
          if (p.op === Op.RW) for (const b of p.payload) gotBytes.push(b);
        }
        g.post(64);
        g.op(Op.CREDIT_UPDATE, 9, req.srcPort, { bufAlloc: 4 * size, fwdCnt: gotBytes.length });
        return gotBytes.length >= size;
      },
      60_000,
    );
    assert.equal(gotBytes.length, size, "no byte twice");
    assert.ok(Buffer.from(gotBytes).equals(Buffer.from(down)), "in order");
    c.s.destroy();
    await backend.close();
  });

  it("refusals: a bad CONNECT line, a guest that says RST, too long a line", async () => {
    const { path, backend, g } = await setup();
    for (const line of [
      "HELLO\n",
      "CONNECT x\n",
      "CONNECT 4294967295\n",
      "CONNECT 1 2\n",
      `${"A".repeat(100)}`,
    ]) {
      const c = await client(path);
      c.s.write(line);
      await until(`closed after ${JSON.stringify(line)}`, () => c.ended() || c.closed());
      assert.equal(c.got(), "");
    }
    const c = await client(path);
    c.s.write("CONNECT 80\n");
    const rx = packets(g);
    const req = await rx.next("REQUEST", (p) => p.op === Op.REQUEST);
    g.op(Op.RST, 80, req.srcPort);
    await until("refused client closed", () => c.ended() || c.closed());
    assert.equal(c.got(), "");
    // A client that goes away before the guest answers: the OK cannot be written, the stream is reset.
    const gone = await client(path);
    gone.s.write("CONNECT 81\n");
    const req2 = await rx.next("REQUEST", (p) => p.op === Op.REQUEST && p.dstPort === 81);
    gone.s.destroy();
    await new Promise((r) => setTimeout(r, 20));
    g.op(Op.RESPONSE, 81, req2.srcPort);
    await rx.next("RST", (p) => p.op === Op.RST && p.dstPort === 81);
    assert.equal(g.device.openConnections, 0);
    await backend.close();
  });

  it("a stale socket file is replaced; a live one or a regular file is refused", async () => {
    const path = join(scratch, "stale.sock");
    const live = createServer();
    await new Promise<void>((r) => live.listen(path, r));
    await assert.rejects(UdsVsockBackend.listen(path), /another process listens there/);
    await new Promise<void>((r) => live.close(() => r()));
    // A process killed while listening leaves its socket file behind.
    const script = `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`;
    spawnSync(process.execPath, ["-e", script]);
    assert.ok(statSync(path).isSocket(), "stale socket left behind");
    const b = await UdsVsockBackend.listen(path);
    await b.close();
    const file = join(scratch, "plain");
    writeFileSync(file, "x");
    await assert.rejects(UdsVsockBackend.listen(file), /is not a socket/);
  });

  it("a socket path longer than sun_path holds is refused, not bound truncated", {
    timeout: 10_000,
  }, async () => {
    const long = join(scratch, "l".repeat(108 - scratch.length));
    assert.equal(Buffer.byteLength(long), 109);
    await assert.rejects(UdsVsockBackend.listen(long), /at most 107 bytes, this one has 109/);
    assert.equal(existsSync(long.slice(0, 107)), false);
    assert.equal(socketPathProblem(join(scratch, "l".repeat(106 - scratch.length))), null);
  });
});
