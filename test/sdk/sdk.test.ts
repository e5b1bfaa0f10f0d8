/**
 * The SDK against a real daemon (`vireo daemon`, a child process on a Unix socket): every method
 * reaches its route, errors come back typed with the API's message, and warm pools of the small
 * bare-metal guests (test/guest-daemon/idle.S says "idle" and sleeps) hand out, refill, time out
 * and survive a restart of the daemon.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  OPERATIONS,
  type Pool,
  Vireo,
  VireoApiError,
  VireoConnectionError,
  type VireoEvent,
  type VmInfo,
  type VmSpec,
} from "../../src/sdk/index.js";
import { type FlagDaemon, startDaemonWith, stopDaemon } from "../api/console-support.js";
import {
  counterSpec,
  type Daemon,
  repoRoot,
  sleep,
  startDaemon,
  tempDir,
  tickerGuest,
  toolchainMissing,
  until,
} from "../api/support.js";
import { buildBareMetal } from "../support/bare-metal.js";
import { after, before, describe, test } from "../support/test.js";

const missing = toolchainMissing();
if (missing !== undefined) process.stdout.write(`# skipping the SDK's daemon tests: ${missing}\n`);

const document = JSON.parse(readFileSync(join(repoRoot, "docs", "openapi.json"), "utf8")) as {
  paths: Record<string, Record<string, { operationId: string }>>;
};
const operationIds = Object.values(document.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));

/** The error `call` rejects with, which must be a VireoApiError. */
async function apiError(call: Promise<unknown>): Promise<VireoApiError> {
  try {
    await call;
  } catch (e) {
    assert.ok(e instanceof VireoApiError, `not a VireoApiError: ${String(e)}`);
    return e;
  }
  assert.fail("the call succeeded");
}

describe("the SDK", () => {
  test("every route of docs/openapi.json has an SDK method named after its operationId", () => {
    assert.ok(operationIds.length >= 25);
    const lacking = operationIds.filter(
      (id) => typeof (Vireo.prototype as unknown as Record<string, unknown>)[id] !== "function",
    );
    assert.deepEqual(lacking, [], `routes without an SDK method: ${lacking.join(", ")}`);
    assert.deepEqual(Object.keys(OPERATIONS).sort(), [...operationIds].sort());
  });
});

describe("the SDK against a daemon", { skip: missing !== undefined }, () => {
  let dir = "";
  let daemon: Daemon;
  let vireo: Vireo;
  let idle = "";
  let ticker = "";
  const events: VireoEvent[] = [];
  const stopEvents = new AbortController();

  before(async () => {
    dir = tempDir();
    idle = buildBareMetal("test/guest-daemon/idle.S", join(dir, "idle.elf"));
    ticker = tickerGuest(dir);
    daemon = await startDaemon(dir);
    vireo = new Vireo({ socket: daemon.socket });
    void (async () => {
      for await (const e of vireo.events({ signal: stopEvents.signal })) events.push(e);
    })();
  });
  after(async () => {
    stopEvents.abort();
    daemon?.child.kill("SIGTERM");
    await daemon?.exited;
  });

  const idleSpec = (name: string): VmSpec => counterSpec(name, idle);

  test("every SDK method reaches its route", { timeout: 120_000 }, async () => {
    const called = new Set<string>();
    const v = new Proxy(vireo, {
      get(target, key, receiver) {
        if (typeof key === "string" && key in OPERATIONS) called.add(key);
        return Reflect.get(target, key, receiver);
      },
    });
    assert.deepEqual(await v.health(), { ok: true });
    const doc = await v.openapi();
    assert.deepEqual(Object.keys(doc.paths as object).sort(), Object.keys(document.paths).sort());
    assert.equal(typeof (await v.getHost()).cpus, "number");
    assert.match(await v.metrics(), /^# HELP /m);

    const disk = join(dir, "disk.img");
    writeFileSync(disk, Buffer.alloc(4096));
    const created = await v.createVm(
      counterSpec("s1", ticker, { balloon: {}, labels: { team: "sdk" } }) as never,
    );
    assert.equal(created.state, "created");
    assert.deepEqual(
      (await v.listVms({ team: "sdk" })).map((vm) => vm.name),
      ["s1"],
    );
    assert.equal((await v.getVm(created.id)).name, "s1");
    assert.deepEqual((await v.putDrive("s1", { id: "d0", path: disk, readOnly: true })).spec.drives, [
      { id: "d0", path: disk, readOnly: true },
    ]);
    assert.deepEqual((await v.deleteDrive("s1", "d0")).spec.drives, []);
    assert.equal((await v.putNic("s1", 0, { backend: "switch:sdk" })).spec.nics.length, 1);
    assert.equal((await v.deleteNic("s1", 0)).spec.nics.length, 0);
    assert.deepEqual((await v.setCpu("s1", { mode: "shared", weight: 200 })).spec.cpu, {
      mode: "shared",
      weight: 200,
    });
    assert.equal((await v.vmAction("s1", "start")).state, "running");
    // The console, whole and followed.
    await until(
      () => v.vmConsole("s1"),
      (text) => text.includes("tick "),
    );
    const follow = new AbortController();
    let followed = "";
    for await (const chunk of v.followConsole("s1", { signal: follow.signal })) {
      followed += chunk;
      if (followed.includes("tick ")) follow.abort();
    }
    assert.match(followed, /tick [0-9a-f]{16}\n/);
    assert.equal((await v.vmStats("s1")).arch, "riscv64");
    // The WebSocket form of the console route: the held output, then new ticks.
    const session = await v.openConsole("s1");
    const upTo = await session.expect(/tick [0-9a-f]{16}\n/);
    assert.match(upTo, /tick /);
    const next = await session.expect(/tick [0-9a-f]{16}\n/);
    assert.match(next, /^tick [0-9a-f]{16}\n$/);
    await session.close();
    assert.equal((await v.setBalloon("s1", 4096)).targetBytes, 4096);
    // The daemon's memory governor may inflate above the client's target on a host short of memory.
    assert.ok((await v.getBalloon("s1")).targetBytes >= 4096);
    // The guest agent's routes: this bare-metal guest has none, which each says (409).
    for (const call of [
      () => v.vmExec("s1", { argv: ["true"] }),
      () => v.putFile("s1", "/tmp/x", new Uint8Array(4)),
      () => v.getFile("s1", "/tmp/x"),
      () => v.guestShutdown("s1"),
    ]) {
      await assert.rejects(call(), (e) => e instanceof VireoApiError && e.status === 409);
    }
    // The streamed form opens, then says the same in its last frame.
    const streamed = await v.vmExecStream("s1", ["true"]);
    await assert.rejects(streamed.exit, (e) => e instanceof VireoApiError && e.status === 409);
    assert.equal((await v.pause("s1")).state, "paused");
    assert.equal((await v.resume("s1")).state, "running");
    // A snapshot, and a VM restored from it that runs on.
    const snapshot = join(dir, "snap-s1");
    assert.ok((await v.snapshotVm("s1", { path: snapshot })).pages > 0);
    const restored = await v.createVm({ name: "s1-restored", restore: snapshot });
    assert.equal(restored.state, "running");
    // Live-migrated within this daemon: it runs under its new name, the old one is gone.
    const listen = join(dir, "migrate.sock");
    assert.deepEqual(await v.migrateIn({ name: "s1-moved", listen }), { name: "s1-moved", listen });
    assert.ok((await v.migrateVm("s1-restored", { to: listen })).passes >= 2);
    assert.equal((await v.getVm("s1-moved")).state, "running");
    assert.ok(!(await v.listVms()).some((x) => x.name === "s1-restored"));
    assert.equal((await v.kill("s1-moved")).state, "stopped");
    await v.deleteVm("s1-moved");
    assert.equal((await v.kill("s1")).state, "stopped");
    await v.deleteVm("s1");

    const pool = await v.createPool({ name: "every", spec: idleSpec("tpl"), size: 1, readyMarker: "idle" });
    assert.deepEqual([pool.size, pool.readyMarker], [1, "idle"]);
    assert.deepEqual(
      (await v.listPools()).map((p) => p.name),
      ["every"],
    );
    await until(
      () => v.getPool("every"),
      (p) => p.ready === 1,
    );
    // A riscv64 pool clones its VMs from a snapshot of one it booted.
    assert.equal((await v.getPool("every")).source, "snapshot");
    const vm = await v.acquireVm("every", { timeoutMs: 10_000 });
    assert.equal(vm.labels["vireo.pool"], "every");
    await v.releaseVm("every", vm.name);
    await v.deletePool(pool.id);

    // The stream is open once its first event comes: VMs are defined and deleted until one does.
    const seen: VireoEvent[] = [];
    const gone = new AbortController();
    const watching = (async () => {
      for await (const e of v.events({ signal: gone.signal })) seen.push(e);
    })();
    const s2 = (e: VireoEvent) => e.type !== "pool" && e.vm.name.startsWith("s2-");
    for (let i = 0; !seen.some(s2); i++) {
      await v.createVm(idleSpec(`s2-${i}`));
      await v.deleteVm(`s2-${i}`);
      await sleep(50);
    }
    gone.abort();
    await watching;
    const first = seen.find(s2);
    assert.ok(first?.type === "created" || first?.type === "deleted", JSON.stringify(first));

    const missed = Object.keys(OPERATIONS).filter((op) => !called.has(op));
    assert.deepEqual(missed, [], `SDK methods this test did not call: ${missed.join(", ")}`);
  });

  test("errors are VireoApiErrors with the status, the code and the API's message", {
    timeout: 30_000,
  }, async () => {
    const notFound = await apiError(vireo.getVm("no-such-vm"));
    assert.deepEqual(
      [notFound.status, notFound.code, notFound.message],
      [404, "not-found", "no VM 'no-such-vm'"],
    );
    const bad = await apiError(vireo.createVm({ ...idleSpec("bad"), memory: 12345 }));
    assert.deepEqual([bad.status, bad.code], [400, "invalid"]);
    assert.equal(bad.fields[0]?.path, "/memory");
    assert.match(bad.message, /^body: \/memory: riscv64 guests take/);
    const big = await apiError(vireo.createPool({ spec: idleSpec("t"), size: 65 }));
    assert.deepEqual([big.status, big.code], [400, "invalid"]);
    assert.match(big.message, /\/size/);
    const noKernel = await apiError(
      vireo.createPool({ spec: counterSpec("t", join(dir, "gone.elf")) as never, size: 1 }),
    );
    assert.equal(noKernel.status, 400);
    assert.equal(noKernel.fields[0]?.path, "/spec/boot/kernel");
    assert.match(noKernel.message, /gone\.elf' does not exist/);
    const noPool = await apiError(vireo.acquire("no-such-pool"));
    assert.deepEqual([noPool.status, noPool.message], [404, "no pool 'no-such-pool'"]);
    const other = await vireo.createVm(idleSpec("not-pooled"));
    await vireo.createPool({ name: "errs", spec: idleSpec("t"), size: 0 });
    const foreign = await apiError(vireo.release("errs", other.name));
    assert.deepEqual([foreign.status, foreign.message], [409, "VM 'not-pooled' is not from pool 'errs'"]);
    const empty = await apiError(vireo.acquire("errs", { timeoutMs: 60_000 }));
    assert.deepEqual([empty.status, empty.code], [503, "unavailable"]);
    assert.match(empty.message, /pool 'errs' has size 0/);
    await vireo.deletePool("errs");
    await vireo.deleteVm(other.name);
  });

  test("a pool of 2 serves 4 acquires: the last two wait for the refill; released VMs are gone", {
    timeout: 120_000,
  }, async () => {
    await vireo.createPool({ name: "p2", spec: idleSpec("t"), size: 2, readyMarker: "idle" });
    const warm = await until(
      () => vireo.getPool("p2"),
      (p) => p.ready === 2,
    );
    assert.equal(warm.source, "snapshot");
    const got = await Promise.all([1, 2, 3, 4].map(() => vireo.acquire("p2", { timeoutMs: 60_000 })));
    const names = got.map((vm) => vm.name);
    assert.equal(new Set(names).size, 4, `four different VMs: ${names.join(" ")}`);
    const fromWarm = names.filter((n) => warm.vms.includes(n));
    assert.equal(fromWarm.length, 2, `two were warm (${warm.vms.join(" ")}), two from the refill`);
    for (const vm of got) {
      assert.equal(vm.state, "running");
      assert.equal(vm.labels["vireo.pool"], "p2");
      // Each had booted when it was handed out: cloned from a snapshot of a VM that had printed its
      // marker (a clone's console starts after it), not booting afresh.
      assert.doesNotMatch(await vireo.console(vm.name), /idle/, "a clone of the booted template");
    }
    const readyEvents = () =>
      events.filter((e) => e.type === "pool" && e.pool.name === "p2" && e.change === "ready").length;
    await until(
      async () => readyEvents(),
      (n) => n >= 4,
    );
    // Released through the pool, or deleted as any VM: gone either way, never handed out again.
    await vireo.release("p2", names[0] as string);
    await vireo.deleteVm(names[1] as string);
    await Promise.all(names.slice(2).map((n) => vireo.release("p2", n)));
    for (const n of names) assert.equal((await apiError(vireo.getVm(n))).status, 404);
    const refilled = await until(
      () => vireo.getPool("p2"),
      (p) => p.ready === 2,
    );
    assert.ok(refilled.vms.every((n) => !names.includes(n)));
    assert.deepEqual(
      (await vireo.listVms({ "vireo.pool": "p2" })).map((vm) => vm.name).sort(),
      [...refilled.vms].sort(),
    );
    // An idle VM deleted behind the pool's back is replaced.
    const lost = refilled.vms[0] as string;
    await vireo.deleteVm(lost);
    const replaced = await until(
      () => vireo.getPool("p2"),
      (p) => p.ready === 2 && !p.vms.includes(lost),
    );
    await vireo.deletePool("p2");
    for (const n of replaced.vms) assert.equal((await apiError(vireo.getVm(n))).status, 404);
  });

  test("an empty pool's acquire waits up to its deadline and says so (504)", {
    timeout: 60_000,
  }, async () => {
    // A marker the guest never prints: its VM boots for ever.
    await vireo.createPool({ name: "never", spec: idleSpec("t"), size: 1, readyMarker: "never printed" });
    const waited = await apiError(vireo.acquire("never", { timeoutMs: 300 }));
    assert.deepEqual([waited.status, waited.code], [504, "timeout"]);
    assert.match(waited.message, /^pool 'never' had no ready VM within 300 ms \(1 booting\)$/);
    // A client that gives up is no longer waiting.
    const giveUp = new AbortController();
    const abandoned = vireo.acquire("never", { timeoutMs: 60_000, signal: giveUp.signal });
    await until(
      () => vireo.getPool("never"),
      (p: Pool) => p.waiting === 1,
    );
    giveUp.abort();
    await assert.rejects(abandoned, { name: "AbortError" });
    await until(
      () => vireo.getPool("never"),
      (p: Pool) => p.waiting === 0,
    );
    // A waiter whose pool is deleted hears so at once.
    const pending = apiError(vireo.acquire("never", { timeoutMs: 60_000 }));
    await until(
      () => vireo.getPool("never"),
      (p: Pool) => p.waiting === 1,
    );
    await vireo.deletePool("never");
    const deleted = await pending;
    assert.deepEqual([deleted.status, deleted.message], [503, "pool 'never' was deleted"]);
  });

  test("a pool outlives a daemon restart: its old idle VMs deleted, fresh ones booted", {
    timeout: 120_000,
  }, async () => {
    await vireo.createPool({ name: "kept", spec: idleSpec("t"), size: 2 });
    const before: Pool = await until(
      () => vireo.getPool("kept"),
      (p) => p.ready === 2,
    );
    stopEvents.abort();
    daemon.child.kill("SIGTERM");
    await daemon.exited;
    daemon = await startDaemon(dir);
    vireo = new Vireo({ socket: daemon.socket });
    const after = await until(
      () => vireo.getPool("kept"),
      (p) => p.ready === 2,
    );
    assert.equal(after.id, before.id);
    assert.ok(after.vms.every((n) => !before.vms.includes(n)));
    const left: VmInfo[] = await vireo.listVms({ "vireo.pool": "kept" });
    assert.deepEqual(left.map((vm) => vm.name).sort(), [...after.vms].sort());
    await vireo.deletePool("kept");
  });
});

describe("the SDK over TCP, and as the package", { skip: missing !== undefined }, () => {
  let daemon: FlagDaemon | undefined;
  after(() => (daemon === undefined ? undefined : stopDaemon(daemon)));

  test("a URL and the token: calls, the console WebSocket, 401 as a VireoApiError", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir();
    const idle = buildBareMetal("test/guest-daemon/idle.S", join(dir, "idle.elf"));
    daemon = await startDaemonWith(dir, ["--listen", "127.0.0.1:0"]);
    const port = /listening on tcp 127\.0\.0\.1:(\d+)/.exec(daemon.log())?.[1];
    const token = readFileSync(join(daemon.stateDir, "api-token"), "utf8").trim();
    const vireo = new Vireo({ url: `http://127.0.0.1:${port}`, token });
    assert.deepEqual(await vireo.health(), { ok: true });
    await vireo.createVm(counterSpec("tcp", idle));
    await vireo.start("tcp");
    const session = await vireo.openConsole("tcp");
    assert.match(await session.expect("idle"), /idle$/);
    await session.close();
    const wrong = await apiError(new Vireo({ url: `http://127.0.0.1:${port}`, token: "wrong" }).listVms());
    assert.deepEqual([wrong.status, wrong.code], [401, "unauthorized"]);
    assert.match(wrong.message, /Authorization: Bearer/);
    await assert.rejects(
      new Vireo({ socket: join(dir, "none.sock") }).health(),
      (e: Error) =>
        e instanceof VireoConnectionError && /no Vireo daemon listens on .*none\.sock/.test(e.message),
    );
  });

  test('`import { Vireo } from "vireo"` is this SDK, with its type declarations', {
    timeout: 10_000,
  }, async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    const entry = pkg.exports["."];
    assert.ok(existsSync(join(repoRoot, entry.types)), `${entry.types} is built`);
    assert.match(readFileSync(join(repoRoot, entry.types), "utf8"), /Vireo/);
    const byName = await import("vireo");
    assert.equal(byName.Vireo, Vireo);
    assert.equal(byName.VireoApiError, VireoApiError);
  });
});
