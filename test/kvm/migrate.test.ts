/**
 * Live migration of an x86_64 VM between two daemons on this machine (KVM's dirty log for the passes):
 * test/guest-x86/scribble.S rewrites 1024 pages a round and checks them, on the source; POST
 * /vms/migrate-in waits on the target, POST /vms/{id}/migrate moves it; the target's console goes on
 * with the next rounds, consecutive, no page lost ("bad"), and the VM is gone from the source.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, type Daemon, startDaemon, until } from "../api/support.js";
import { after, describe, test } from "../support/test.js";
import { guest, guestImages, kvmUnavailable, x86GuestSpec } from "./support.js";

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (why !== undefined) console.log(`# skipping KVM migration tests: ${why}`);

/** The numbers of the complete lines of `text` (scribble.S prints one a line). */
function numbers(text: string): number[] {
  return text
    .split("\n")
    .slice(0, -1)
    .map((l) => Number(l));
}

describe("KVM live migration", { skip: why }, () => {
  const dir = mkdtempSync(join(tmpdir(), "vireo-kvm-migrate-"));
  const daemons: Daemon[] = [];
  after(async () => {
    for (const d of daemons) {
      d.child.kill("SIGKILL");
      await d.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("a VM busy writing memory moves between daemons and goes on there, every page intact", {
    timeout: 180_000,
  }, async () => {
    const source = await startDaemon(join(dir, "a"));
    daemons.push(source);
    const target = await startDaemon(join(dir, "b"));
    daemons.push(target);
    // A virtio device: its writes to RAM are in no KVM log, so the last pass sends every page.
    const spec = x86GuestSpec("orig", guest("scribble"), { rng: true });
    assert.equal((await api(source.socket, "POST", "/vms", spec)).status, 201);
    assert.equal((await api(source.socket, "POST", "/vms/orig/actions/start")).status, 200);
    const consoleOf = async (d: Daemon, name: string) =>
      (await api(d.socket, "GET", `/vms/${name}/console`)).text;
    await until(
      () => consoleOf(source, "orig"),
      (t) => numbers(t).length >= 20,
    );
    const listen = join(dir, "b", "in.sock");
    const waiting = await api(target.socket, "POST", "/vms/migrate-in", { name: "moved", listen });
    assert.equal(waiting.status, 201, waiting.text);
    const moved = await api(source.socket, "POST", "/vms/orig/migrate", { to: listen });
    assert.equal(moved.status, 200, `${moved.text}\n${target.log()}`);
    const result = moved.json as { passes: number; pages: number; downtimeMs: number };
    // The first pass alone holds the 1024 pages, and the guest rewrote them while it went.
    assert.ok(result.passes >= 2 && result.pages > 1024, moved.text);
    console.log(`# x86 guest, daemon to daemon: ${moved.text}`);
    assert.equal(
      (await api(source.socket, "GET", "/vms/orig")).status,
      404,
      "the VM is gone from the source",
    );
    const there = await until(
      () => consoleOf(target, "moved"),
      (t) => numbers(t).length >= 20,
    );
    assert.doesNotMatch(there, /^bad$/m, "every page the guest wrote arrived");
    const n = numbers(there).slice(1); // the first line may be the rest of one the pause cut
    assert.deepEqual(
      n,
      n.map((_, i) => (n[0] as number) + i),
    );
    assert.ok((n[0] as number) > 20, `the target went on at ${n[0]}`);
  });
});
