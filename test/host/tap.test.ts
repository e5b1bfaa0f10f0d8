import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TapBackend } from "../../src/host/tap.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

/**
 * The TAP backend against the Linux kernel, only where this process may create TAP interfaces
 * (root / CAP_NET_ADMIN, /dev/net/tun, iproute2 with network namespaces). Every TAP lives in a network
 * namespace made for the test, with a private /24 that exists nowhere else: no traffic leaves it.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const NS = `vireo-tap-${process.pid}`;
const HOST_IP = "10.203.7.1";
const GUEST_IP = "10.203.7.2";
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;

function ip(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error?.message ?? ""}` };
}

/** Why TAP tests cannot run here, or null when they can (the namespace is then created). */
function unavailable(): string | null {
  if (process.platform !== "linux") return "not Linux";
  try {
    closeSync(openSync("/dev/net/tun", constants.O_RDWR));
  } catch (e) {
    return `/dev/net/tun cannot be opened (${(e as NodeJS.ErrnoException).code})`;
  }
  const version = ip("-V");
  if (!version.ok) return `iproute2 'ip' is not available (${version.out.trim()})`;
  const ns = ip("netns", "add", NS);
  if (!ns.ok) return `cannot create a network namespace (${ns.out.trim()})`;
  return null;
}

/** In the namespace: `ip ...`, asserting success. */
function nsIp(...args: string[]): string {
  const r = ip("-n", NS, ...args);
  assert.ok(r.ok, `ip -n ${NS} ${args.join(" ")}: ${r.out}`);
  return r.out;
}

/** An Ethernet frame: ARP request "who has HOST_IP? tell GUEST_IP" from `mac`. */
function arpRequest(mac: number[]): Uint8Array {
  const ipBytes = (s: string) => s.split(".").map(Number);
  return Uint8Array.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ...mac,
    ...[0x08, 0x06],
    ...[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01],
    ...mac,
    ...ipBytes(GUEST_IP),
    ...[0, 0, 0, 0, 0, 0],
    ...ipBytes(HOST_IP),
  ]);
}

let reason: string | null = "not checked";

describe("TAP backend", { concurrency: 1 }, () => {
  before(() => {
    reason = unavailable();
    if (reason !== null) process.stdout.write(`# TAP tests skipped: ${reason}\n`);
  });
  after(() => {
    if (reason === null) ip("netns", "del", NS);
  });

  test("frames both ways: an ARP request to the namespace's host side is answered", async (t) => {
    if (reason !== null) return t.skip(reason);
    const tap = TapBackend.open("vtapu0");
    try {
      assert.equal(tap.name, "vtapu0");
      // Writes while the interface is down are refused by the kernel: counted, not thrown.
      tap.send(arpRequest([0x52, 0x54, 0, 0x76, 9, 9]));
      assert.equal(tap.counters.txDropped, 1);
      // Into the test's namespace (the descriptor stays ours), with an address there.
      const moved = ip("link", "set", "vtapu0", "netns", NS);
      assert.ok(moved.ok, moved.out);
      nsIp("addr", "add", `${HOST_IP}/24`, "dev", "vtapu0");
      nsIp("link", "set", "vtapu0", "up");
      const mac = [0x52, 0x54, 0, 0x76, 9, 1];
      const replies: Uint8Array[] = [];
      const reply = new Promise<void>((done) => {
        tap.onReceive((f) => {
          // ARP reply (opcode 2) to our MAC from the host side's address. Other ARP traffic may come
          // first (once, under load, a reply with sender 0.0.0.0 did): it is not the answer.
          const from = HOST_IP.split(".").map(Number);
          if (
            f[12] === 0x08 &&
            f[13] === 0x06 &&
            f[21] === 2 &&
            f.subarray(0, 6).every((b, i) => b === mac[i]) &&
            f.subarray(28, 32).every((b, i) => b === from[i])
          ) {
            replies.push(f.slice());
            done();
          }
        });
      });
      tap.send(arpRequest(mac));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([reply, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      assert.equal(replies.length, 1, `no ARP reply; counters ${JSON.stringify(tap.counters)}`);
      const r = replies[0] as Uint8Array;
      assert.deepEqual([...r.subarray(28, 32)], HOST_IP.split(".").map(Number), "sender IP");
      assert.ok(tap.counters.txFrames >= 1 && tap.counters.rxFrames >= 1);
    } finally {
      tap.close();
    }
    assert.ok(tap.closed);
    tap.send(new Uint8Array(60));
  });

  test("opening errors name the TAP and the reason", (t) => {
    if (reason !== null) return t.skip(reason);
    assert.throws(() => TapBackend.open("bad/name"), /TAP name/);
    const first = TapBackend.open("vtapu1");
    try {
      // A non-persistent TAP has one owner: a second attach is refused.
      assert.throws(() => TapBackend.open("vtapu1"), /cannot attach TAP 'vtapu1': EBUSY/);
    } finally {
      first.close();
    }
  });

  test("a guest on `--net tap:` pings the host side of the TAP", { timeout: 300_000 }, async (t) => {
    if (reason !== null) return t.skip(reason);
    if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
    const image = await riscv64Image();
    // A persistent TAP, configured before the VM attaches to it.
    nsIp("tuntap", "add", "dev", "vtapg0", "mode", "tap");
    nsIp("addr", "add", `${HOST_IP}/24`, "dev", "vtapg0");
    nsIp("link", "set", "vtapg0", "up");
    const script = [
      `ip addr add ${GUEST_IP}/24 dev eth0`,
      "ip link set eth0 up",
      "i=0",
      `while [ $i -lt 60 ] && ! ping -c 1 -W 1 ${HOST_IP} >/dev/null 2>&1; do i=$((i+1)); done`,
      `ping -c 3 -W 5 ${HOST_IP}`,
    ].join("\n");
    const append = `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${Buffer.from(script).toString("base64")}`;
    const args = ["netns", "exec", NS, process.execPath, main, "run", "--kernel", image.kernel];
    args.push("--initrd", image.initrd, "--append", append, "--memory", "256M", "--stats");
    args.push("--net", "tap:vtapg0,mac=52:54:00:76:00:42");
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn("ip", args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
      child.on("close", (status) => {
        clearTimeout(timer);
        done({ status, stdout, stderr });
      });
    });
    const out = r.stdout.replaceAll("\r", "");
    const context = `status ${r.status}\n--- stdout (tail)\n${out.slice(-3000)}\n--- stderr\n${r.stderr}`;
    assert.equal(r.status, 0, context);
    assert.match(out, /^CHECK virtio-net=eth0 mac=52:54:00:76:00:42$/m, context);
    assert.match(
      out,
      new RegExp(`^64 bytes from ${HOST_IP.replaceAll(".", "\\.")}: seq=\\d+ ttl=64`, "m"),
      context,
    );
    assert.match(out, /^3 packets transmitted, 3 packets received, 0% packet loss$/m, context);
    assert.match(out, /^CHECK run-status=0$/m, context);
    assert.match(
      r.stderr,
      /^stats: net0 mac=52:54:00:76:00:42 txFrames=\d+ .*txMalformed=0 rxFrames=\d+/m,
      context,
    );
    // The namespace's side saw the guest's frames.
    const link = nsIp("-s", "link", "show", "vtapg0");
    assert.match(link, /RX:/, link);
  });
});
