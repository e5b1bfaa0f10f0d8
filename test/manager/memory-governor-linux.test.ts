/**
 * The memory governor against two idle Debian guests (riscv64 worker VMs, 256 MiB each, overcommitted
 * with balloons, on a budget smaller than their sum), booted once. The test plays the host: its
 * available memory is a base, less a pressure the test sets, plus what the balloons hold (as a host
 * gets back ballooned pages). Raising the pressure below the low watermark makes the governor inflate
 * both balloons (the guests' MemTotal drops by what each balloon holds); taking it away makes it give
 * everything back. Each decision is a `memory` event and the VM's stats show the last one.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { residentBytes } from "../../src/host/page-reclaimer.js";
import { type VmEvent, VmManager } from "../../src/manager/manager.js";
import { sleep } from "../api/support.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

/**
 * Each phase has its own budget, generous for a loaded 2-core host (booting the two guests took 30–170 s there, the other phases 2–6 s), so
 * that a slow boot cannot eat the time of the phases after it, and a failure names the phase.
 */
const BOOT_MS = 300_000;
const PHASE_MS = 120_000;
const TIMEOUT_MS = BOOT_MS + 2 * PHASE_MS + 30_000;
const MiB = 2 ** 20;
const MEMORY = 256 * MiB;
const LOW = 64 * MiB;
const HIGH = 96 * MiB;
/** Without pressure the host has plenty; with it, far below the low watermark. */
const BASE = 256 * MiB;
const PRESSURE = 240 * MiB;
const NAMES = ["a", "b"] as const;
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;

/**
 * Dirties 64 MiB of page cache and frees it (so that the pages the balloon takes are resident on the
 * host, whose RSS can then drop), then prints MemTotal (kB) whenever it changes, with shell builtins
 * only, so that the guest stays idle.
 */
const SCRIPT = [
  "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>/dev/null;rm /tmp/fill",
  'mt(){ while read k v u;do [ "$k" = MemTotal: ]&&echo $v&&return;done </proc/meminfo;}',
  'echo "MEM-READY total=$(mt)"',
  'p=0;while :;do t=$(mt);[ "$t" != "$p" ]&&echo "MEMTOTAL $t";p=$t;sleep 1;done',
].join("\n");

/** The guest's last MemTotal line, kB (null before the first). */
function lastTotal(out: string): number | null {
  const all = [...out.matchAll(/^MEMTOTAL (\d+)\n/gm)];
  const last = all.at(-1);
  return last === undefined ? null : Number(last[1]);
}

describe("the memory governor and two Linux guests' balloons", () => {
  let image: { kernel: string; initrd: string } | null = null;
  let hasModule = false;
  let manager: VmManager | null = null;
  before(async () => {
    if (!hasApt) return;
    image = await riscv64Image();
    hasModule = gunzipSync(readFileSync(image.initrd)).includes("virtio_balloon.ko");
  });
  after(() => manager?.shutdown(0));

  test("pressure inflates the idle guests' balloons (MemTotal drops); its end gives it all back", {
    timeout: TIMEOUT_MS,
  }, async (t) => {
    if (image === null) return t.skip("apt-get is not available to fetch the Debian image");
    if (!hasModule) return t.skip("the default initramfs carries no virtio_balloon module");
    const start = performance.now();
    /** When each phase began, in seconds from the test's start: a failure says where the time went. */
    const phases: string[] = [];
    const phase = (name: string) =>
      phases.push(`${name} at ${((performance.now() - start) / 1000).toFixed(1)} s`);
    const host = { pressure: 0 };
    const logs: string[] = [];
    const events: VmEvent[] = [];
    const m = await VmManager.open({
      stateDir: null,
      log: (line) => logs.push(line),
      host: (console) => nodeVmHost({ console }),
      vmWorker: vmWorkerEntry,
      // 512 MiB of guests on 384 MiB: admitted only as overcommitted (1.5 × 384 = 576 MiB).
      memoryBudget: 384 * MiB,
      memoryGovernor: {
        intervalMs: 500,
        low: LOW,
        high: HIGH,
        hostAvailable: async () => {
          let held = 0;
          for (const name of NAMES) held += (await m.balloon(name, null)).actualBytes;
          return BASE - host.pressure + held;
        },
      },
    });
    manager = m;
    m.onEvent((e) => {
      if (e.type === "memory") events.push(e);
    });
    const out = new Map<string, string>();
    const run = Buffer.from(SCRIPT).toString("base64");
    for (const name of NAMES) {
      m.create({
        name,
        arch: "riscv64",
        engine: "auto",
        cpus: 1,
        memory: MEMORY,
        memoryMode: "overcommit",
        balloon: {},
        boot: {
          kernel: image.kernel,
          initrd: image.initrd,
          cmdline: `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${run}`,
        },
        drives: [],
        nics: [],
        rng: false,
        console: false,
        virtioRing: "split",
      });
      out.set(name, "");
      m.console(name).follow((chunk) => {
        out.set(name, out.get(name) + Buffer.from(chunk).toString("latin1").replaceAll("\r", ""));
      });
      await m.act(name, "start");
    }
    const text = (name: string) => out.get(name) ?? "";
    const context = async () => {
      const now = ((performance.now() - start) / 1000).toFixed(1);
      const parts = [
        `phases: ${phases.join(", ")}; now ${now} s`,
        `pressure ${host.pressure / MiB} MiB; governor ${JSON.stringify(m.memoryInfo())}`,
      ];
      for (const name of NAMES) {
        const figures = await m.balloon(name, null).catch((e: Error) => e.message);
        parts.push(
          `--- ${name}: ${m.get(name).state} ${JSON.stringify(figures)}\n${text(name).slice(-1500)}`,
        );
      }
      return `${parts.join("\n")}\n--- log (tail)\n${logs.slice(-30).join("\n")}`;
    };
    /** Waits until `check` holds or `budgetMs` passes; says which. */
    const until = async (check: () => boolean | Promise<boolean>, budgetMs = PHASE_MS) => {
      const deadline = performance.now() + budgetMs;
      while (performance.now() < deadline) {
        if (await check()) return true;
        await sleep(250);
      }
      return false;
    };
    const running = () => NAMES.every((n) => m.get(n).state === "running");
    // Booted, and the governor has the guests' statistics (their free memory).
    const seen = new Set<string>();
    const mark = (what: string, holds: boolean) => {
      if (holds && !seen.has(what)) {
        seen.add(what);
        phase(what);
      }
      return holds;
    };
    const ready = await until(
      () =>
        !running() ||
        NAMES.map(
          (n) =>
            mark(`${n} MEM-READY`, /^MEM-READY total=\d+\n/m.test(text(n))) &&
            mark(`${n} statistics`, typeof m.memoryInfo()?.balloons[n]?.freeBytes === "number"),
        ).every(Boolean),
      BOOT_MS,
    );
    assert.ok(ready && running(), await context());
    // From the MEM-READY line, not the last MEMTOTAL one: the loop's first line may still be on its way
    // (a subshell later, on a loaded host), and a missing figure would make every later check fail.
    const before = new Map(NAMES.map((n) => [n, Number(/^MEM-READY total=(\d+)\n/m.exec(text(n))?.[1])]));
    for (const n of NAMES)
      assert.ok((before.get(n) as number) > 0, `${n}'s MemTotal at start\n${await context()}`);
    assert.equal(events.length, 0, `no decision without pressure\n${await context()}`);

    /** Every balloon holds what it was asked for and each guest printed the MemTotal that goes with it. */
    const settled = async () => {
      for (const n of NAMES) {
        const f = await m.balloon(n, null);
        if (f.actualBytes !== f.targetBytes) return false;
        if (lastTotal(text(n)) !== (before.get(n) as number) - f.actualBytes / 1024) return false;
      }
      return true;
    };

    phase("booted");
    const rssBefore = residentBytes();
    host.pressure = PRESSURE;
    const reclaimed = await until(
      async () =>
        !running() ||
        (NAMES.every((n) => events.some((e) => e.vm.name === n)) &&
          (m.memoryInfo()?.effectiveAvailable ?? 0) >= LOW &&
          (await settled())),
    );
    assert.ok(reclaimed && running(), `reclaim\n${await context()}`);
    const held = new Map<string, number>();
    for (const n of NAMES) {
      const f = await m.balloon(n, null);
      held.set(n, f.actualBytes);
      const total = lastTotal(text(n)) as number;
      t.diagnostic(`${n}: balloon ${f.actualBytes / MiB} MiB; MemTotal ${before.get(n)} kB -> ${total} kB`);
      assert.ok(f.actualBytes > 0, `the idle guest ${n} gave memory\n${await context()}`);
      t.diagnostic(`${n}: reclaimer ${f.reclaimer} released ${f.reclaimedBytes / MiB} MiB of host memory`);
      if (f.reclaimer === "madvise") assert.ok(f.reclaimedBytes > 0, "host memory went back");
      assert.ok(total < (before.get(n) as number), `MemTotal in ${n} dropped`);
      const memory = m.stats(n).memory;
      assert.equal(memory?.mode, "overcommit");
      // The last decision is what the balloon was asked to hold (a reclaim, or a small correction).
      assert.equal(memory?.lastDecision?.target, f.targetBytes, `${n}'s stats show the decision`);
      assert.ok(events.some((e) => e.vm.name === n && /low watermark/.test(e.memory?.reason ?? "")));
    }
    const inflating = events.filter((e) => e.memory !== undefined && e.memory.target > e.memory.from);
    assert.ok(inflating.length >= 2);
    for (const e of inflating) assert.match(e.memory?.reason ?? "", /low watermark/);
    const sum = [...held.values()].reduce((s, b) => s + b, 0);
    assert.ok(BASE - PRESSURE + sum >= LOW, "the host is back above its low watermark");
    const rssAfter = residentBytes();
    const madvise = (await m.balloon("a", null)).reclaimer === "madvise";
    if (rssBefore !== null && rssAfter !== null && madvise) {
      t.diagnostic(`host RSS ${(rssBefore / MiB).toFixed(1)} MiB -> ${(rssAfter / MiB).toFixed(1)} MiB`);
      // The guests dirtied 64 MiB each just before; the balloons' pages come mostly from those. The
      // process holds more than the guests (workers' heaps), so only a part of the drop is asserted.
      assert.ok(rssBefore - rssAfter >= sum / 4, "host RSS dropped");
    }

    phase("reclaimed");
    const firstBack = events.length;
    host.pressure = 0;
    const returned = await until(
      async () =>
        !running() ||
        (NAMES.every((n) => m.memoryInfo()?.balloons[n]?.targetBytes === 0) && (await settled())),
    );
    assert.ok(returned && running(), `give back\n${await context()}`);
    for (const n of NAMES) {
      assert.equal((await m.balloon(n, null)).actualBytes, 0);
      assert.equal(lastTotal(text(n)), before.get(n), `MemTotal in ${n} is back`);
      assert.match(m.stats(n).memory?.lastDecision?.reason ?? "", /high watermark/);
    }
    const back = events.slice(firstBack);
    assert.ok(back.length >= 2 && back.every((e) => (e.memory?.target ?? 1) < (e.memory?.from ?? 0)));
    t.diagnostic(`${events.length} decisions; ${m.memoryInfo()?.rounds} rounds`);
    phase("given back");
    t.diagnostic(`phases: ${phases.join(", ")}`);
  });
});
