import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

/**
 * virtio-vsock end to end: the Debian kernel's vsock drivers (modules in the default initramfs) against
 * Vireo's device and its Unix-socket backend (`vireo run --vsock cid=3,uds=PATH`). A tiny static program
 * of ours (test/guest-vsock/vsock.c, raw system calls) reaches the guest on a read-only virtio-blk drive
 * (the ELF zero-padded to whole sectors: trailing zeros do not matter to the loader); the check-mode
 * snippet copies it to /tmp and runs it three times:
 *
 * 1. guest → host: connects to host port 5000 (forwarded to PATH_5000, where this test listens), sends a
 *    line and prints the host's reply;
 * 2. host → guest: listens on port 6000; this test connects to PATH, says `CONNECT 6000`, reads
 *    `OK <port>` and exchanges a line;
 * 3. bulk: 300000 bytes to host port 5001 (checked byte for byte here), then 200000 bytes back (the
 *    guest prints their FNV-1a hash), well beyond both sides' buffers, so credit updates must flow.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const guestDir = join(root, "test/guest-vsock");
const TIMEOUT_MS = 300_000;
const UP = 300_000;
const DOWN = 200_000;
const scratch = mkdtempSync(join(tmpdir(), "vireo-vsock-linux-"));
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
let image: { kernel: string; initrd: string } | null = null;
let hasVsock = false;

const SNIPPET = [
  "set -e",
  "cat /dev/vda >/tmp/v;chmod +x /tmp/v",
  "/tmp/v connect 5000 hello-from-guest",
  "/tmp/v listen 6000",
  `/tmp/v bulk 5001 ${UP}`,
].join("\n");

/** Why the guest program cannot be built, or undefined. */
function toolchainMissing(): string | undefined {
  for (const tool of ["riscv64-unknown-elf-gcc", "make"]) {
    if (spawnSync(tool, ["--version"], { stdio: "ignore" }).error) return `${tool} is not installed`;
  }
  return undefined;
}

const upPattern = (i: number) => (i * 31 + 7) & 0xff;
const downPattern = (i: number) => (i * 17 + 3) & 0xff;

function fnv1a(bytes: Uint8Array): string {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** Listens on a Unix socket; `onConnection` handles each client. */
function listen(path: string, onConnection: Parameters<typeof createServer>[1]): Promise<Server> {
  return new Promise((done, fail) => {
    const server = createServer({ allowHalfOpen: true }, onConnection);
    server.once("error", fail);
    server.listen(path, () => done(server));
  });
}

after(() => rmSync(scratch, { recursive: true, force: true }));

describe("virtio-vsock with Linux", () => {
  before(async () => {
    if (!hasApt) return;
    image = await riscv64Image();
    hasVsock = gunzipSync(readFileSync(image.initrd)).includes("vmw_vsock_virtio_transport.ko");
  });

  test("guest and host connect to each other over AF_VSOCK and Unix sockets", {
    timeout: TIMEOUT_MS + 30_000,
  }, async (t) => {
    const missing = toolchainMissing();
    if (missing !== undefined) {
      console.log(`# vsock guest program skipped: ${missing}`);
      return t.skip(`the guest program cannot be built: ${missing}`);
    }
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    if (!hasVsock) return t.skip("the default initramfs carries no vsock modules");
    const make = spawnSync("make", ["-C", guestDir], { encoding: "utf8" });
    assert.equal(make.status, 0, `make -C test/guest-vsock failed:\n${make.stdout}${make.stderr}`);
    const program = readFileSync(join(guestDir, "build/vsock"));
    const disk = new Uint8Array(Math.ceil(program.length / 512) * 512);
    disk.set(program);
    const diskPath = join(scratch, "tools.img");
    writeFileSync(diskPath, disk);

    const uds = join(scratch, "v.sock");
    // 1. The guest's line to port 5000.
    let lineFromGuest = "";
    const s5000 = await listen(`${uds}_5000`, (s) => {
      s.on("data", (d) => {
        lineFromGuest += d.toString("latin1");
        if (lineFromGuest.endsWith("\n")) s.end("hello-from-host\n");
      });
    });
    // 3. Bulk to port 5001: everything until the guest's end of stream, then DOWN bytes back.
    const upChunks: Buffer[] = [];
    const s5001 = await listen(`${uds}_5001`, (s) => {
      s.on("data", (d: Buffer) => upChunks.push(d));
      s.on("end", () => s.end(Buffer.from(Uint8Array.from({ length: DOWN }, (_, i) => downPattern(i)))));
    });
    // 2. Host-initiated, once the guest listens.
    let hostSide = "";
    let connected = false;
    const connectToGuest = () => {
      connected = true;
      const c = connect({ path: uds, allowHalfOpen: true });
      c.on("error", () => {});
      c.on("data", (d) => {
        hostSide += d.toString("latin1");
        if (/^OK \d+\n$/.test(hostSide)) c.write("ping-from-host\n");
        if (hostSide.endsWith("echo:ping-from-host\n")) c.end();
      });
      c.write("CONNECT 6000\n");
    };

    const { kernel, initrd } = image;
    const append = `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${Buffer.from(SNIPPET).toString("base64")}`;
    const args = [
      ...[main, "run", "--kernel", kernel, "--initrd", initrd, "--append", append, "--stats"],
      ...["--drive", `file=${diskPath},readonly=on`, "--vsock", `cid=3,uds=${uds}`],
    ];
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
        if (!connected && stdout.includes("LISTENING 6000")) connectToGuest();
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
      child.on("close", (status) => {
        clearTimeout(timer);
        done({ status, stdout, stderr });
      });
    });
    await new Promise<void>((done) => s5000.close(() => done()));
    await new Promise<void>((done) => s5001.close(() => done()));
    const out = r.stdout.replaceAll("\r", "");
    const context = `status ${r.status}\n--- stdout (tail)\n${out.slice(-4000)}\n--- stderr\n${r.stderr}`;
    assert.equal(r.status, 0, context);
    assert.match(out, /^CHECK virtio=.*vmw_vsock_virtio_transport/m, context);
    // 1.
    assert.equal(lineFromGuest, "hello-from-guest\n", context);
    assert.match(out, /^REPLY hello-from-host$/m, context);
    // 2.
    assert.match(hostSide, /^OK \d+\necho:ping-from-host\n$/, context);
    assert.match(out, /^GOT ping-from-host$/m, context);
    // 3.
    const up = Buffer.concat(upChunks);
    assert.equal(up.length, UP, context);
    assert.ok(
      up.every((b, i) => b === upPattern(i)),
      "the guest's bulk bytes arrive intact",
    );
    const down = Uint8Array.from({ length: DOWN }, (_, i) => downPattern(i));
    assert.match(out, new RegExp(`^BULK sent=${UP} got=${DOWN} fnv=${fnv1a(down)}$`, "m"), context);
    assert.match(out, /^CHECK run-status=0$/m, context);
    // The device saw nothing malformed and no protocol violation.
    const stats = /^stats: vsock cid=3 (.*)$/m.exec(r.stderr)?.[1] ?? "";
    assert.match(stats, /txMalformed=0 /, context);
    assert.match(stats, /txProtocol=0 /, context);
    assert.match(stats, /connectionsOpened=3 /, context);
  });
});
