/**
 * Host backends given anew where a VM arrives: a VM with a user-named vsock socket and a NIC migrates
 * to a second daemon on this machine only with another socket path (its own is still held by the
 * source: the case that failed before), and arrives there on the socket and NIC backend it was given;
 * a restore and a clone of its snapshot get other sockets and backends too, through the API, `vireo vm`
 * and `vireo run --restore`; a bad override is a 400 or exit status 2 and leaves nothing behind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "../support/test.js";
import {
  api,
  cli,
  counterSpec,
  type Daemon,
  killDaemons,
  toolchainMissing,
  twoDaemons,
  until,
} from "./support.js";

const missing = toolchainMissing();

interface Info {
  state: string;
  spec: { vsock?: { cid: number; uds?: string }; nics: { backend: string; mac?: string }[] };
}

const ticks = (text: string) => text.split("\n").filter((l) => /^tick [0-9a-f]{16}$/.test(l)).length;

/** Resolves once something accepts a connection on the Unix socket `path` (the vsock backend listens). */
function accepts(path: string): Promise<void> {
  assert.ok(statSync(path).isSocket(), `${path} is a socket`);
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("error", reject);
  });
}

describe("host backends overridden at migrate-in, restore and clone", { skip: missing }, () => {
  let dir: string;
  let kernel: string;
  let source: Daemon;
  let target: Daemon;
  before(async () => {
    ({ dir, kernel, source, target } = await twoDaemons());
  });
  after(() => killDaemons(source, target));

  const info = async (d: Daemon, name: string) => (await api(d.socket, "GET", `/vms/${name}`)).json as Info;
  const counting = async (d: Daemon, name: string) => {
    const before = ticks((await api(d.socket, "GET", `/vms/${name}/console`)).text);
    await until(
      async () => ticks((await api(d.socket, "GET", `/vms/${name}/console`)).text),
      (n) => n >= before + 3,
    );
  };
  const run = (args: string[]) =>
    spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 60_000 });

  test("a VM with a named vsock socket migrates on this machine with another socket and NIC backend", {
    timeout: 180_000,
  }, async () => {
    const uds = join(dir, "a", "orig.vsock");
    const spec = counterSpec("orig", kernel, {
      nics: [{ backend: "switch:lan-a", mac: "52:54:00:12:34:56" }],
      vsock: { cid: 5, uds },
    });
    assert.equal((await api(source.socket, "POST", "/vms", spec)).status, 201);
    assert.equal((await api(source.socket, "POST", "/vms/orig/actions/start")).status, 200);
    await counting(source, "orig");
    await accepts(uds);

    // Without an override the target would bind the socket the source still holds.
    const plain = join(dir, "b", "plain.sock");
    assert.equal(
      (await api(target.socket, "POST", "/vms/migrate-in", { name: "plain", listen: plain })).status,
      201,
    );
    const refused = await api(source.socket, "POST", "/vms/orig/migrate", { to: plain });
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.text, /runs on here.*another process listens there/);
    assert.equal((await api(target.socket, "GET", "/vms/plain")).status, 404);
    assert.equal((await info(source, "orig")).state, "running");

    const listen = join(dir, "b", "moved.sock");
    for (const [body, why] of [
      [{ vsockUds: "rel.vsock" }, /vsockUds.*not an absolute path/],
      [{ nics: { x: "switch:b" } }, /nics/],
      [{ nics: { "0": "bridge:br0" } }, /nics/],
    ] as const) {
      const bad = await api(target.socket, "POST", "/vms/migrate-in", { name: "moved", listen, ...body });
      assert.equal(bad.status, 400, bad.text);
      assert.match(bad.text, why);
    }
    const badFlag = run([
      "vm",
      "migrate-in",
      "moved",
      "--listen",
      listen,
      "--nic",
      "lan",
      "--socket",
      target.socket,
    ]);
    assert.equal(badFlag.status, 2, badFlag.stderr);
    assert.match(badFlag.stderr, /--nic lan: expected INDEX=BACKEND/);

    const newUds = join(dir, "b", "moved.vsock");
    const waits = run([
      "vm",
      "migrate-in",
      "moved",
      "--listen",
      listen,
      "--vsock-uds",
      newUds,
      "--nic",
      "0=switch:lan-b",
      "--socket",
      target.socket,
    ]);
    assert.equal(waits.status, 0, waits.stderr);
    const moved = await api(source.socket, "POST", "/vms/orig/migrate", { to: listen });
    assert.equal(moved.status, 200, moved.text);
    const there = await info(target, "moved");
    assert.equal(there.state, "running");
    assert.deepEqual(there.spec.vsock, { cid: 5, uds: newUds });
    assert.deepEqual(there.spec.nics, [{ backend: "switch:lan-b", mac: "52:54:00:12:34:56" }]);
    await accepts(newUds);
    await counting(target, "moved");
  });

  test("a restore and a clone get other sockets and NIC backends; bad overrides leave nothing", {
    timeout: 180_000,
  }, async () => {
    const snap = join(dir, "snap");
    const saved = await api(target.socket, "POST", "/vms/moved/snapshot", { path: snap });
    assert.equal(saved.status, 200, saved.text);

    // "moved" runs on and holds its socket: a restore must be given another one.
    const taken = await api(target.socket, "POST", "/vms", { name: "again", restore: snap });
    assert.equal(taken.status, 400, taken.text);
    assert.match(taken.text, /another process listens there/);
    for (const [body, why] of [
      [{ nics: { "3": "switch:c" } }, /no NIC 3 .*it has 1/],
      [{ nics: { "0": "tap:" } }, /nics/],
      [{ vsockUds: join(dir, "b", "x".repeat(120)) }, /\/vsock\/uds.*at most 107 bytes/],
    ] as const) {
      const bad = await api(target.socket, "POST", "/vms", {
        name: "again",
        restore: snap,
        vsockUds: join(dir, "b", "again.vsock"),
        ...body,
      });
      assert.equal(bad.status, 400, bad.text);
      assert.match(bad.text, why);
      assert.equal((await api(target.socket, "GET", "/vms/again")).status, 404, "nothing stays defined");
    }

    const againUds = join(dir, "b", "again.vsock");
    const again = await api(target.socket, "POST", "/vms", {
      name: "again",
      restore: snap,
      vsockUds: againUds,
      nics: { "0": "switch:lan-c" },
    });
    assert.equal(again.status, 201, again.text);
    const restored = await info(target, "again");
    assert.deepEqual(restored.spec.vsock, { cid: 5, uds: againUds });
    assert.deepEqual(restored.spec.nics, [{ backend: "switch:lan-c", mac: "52:54:00:12:34:56" }]);
    await accepts(againUds);
    await counting(target, "again");

    const cloneUds = join(dir, "b", "copy.vsock");
    const cloned = run([
      "vm",
      "clone",
      snap,
      "--name",
      "copy",
      "--vsock-uds",
      cloneUds,
      "--nic",
      "0=switch:lan-d",
      "--socket",
      target.socket,
    ]);
    assert.equal(cloned.status, 0, cloned.stderr);
    const copy = await info(target, "copy");
    assert.equal(copy.spec.vsock?.uds, cloneUds);
    assert.notEqual(copy.spec.vsock?.cid, 5, "a clone gets a free CID");
    assert.equal(copy.spec.nics[0]?.backend, "switch:lan-d");
    assert.notEqual(copy.spec.nics[0]?.mac, "52:54:00:12:34:56", "a clone gets a new MAC");
    await accepts(cloneUds);

    // vireo run --restore checks the overridden spec as any other, before the VM is built.
    const runBad = run(["run", "--restore", snap, "--nic", "0=tap:"]);
    assert.equal(runBad.status, 2, runBad.stderr);
    assert.match(runBad.stderr, /nics\/0\/backend/);
    const noRestore = run(["run", "--vsock-uds", join(dir, "r.vsock")]);
    assert.equal(noRestore.status, 2, noRestore.stderr);
    assert.match(noRestore.stderr, /--vsock-uds only goes with --restore/);
  });
});
