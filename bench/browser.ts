/**
 * Vireo in a browser tab vs Node (issue 13): the default riscv64 guest with its root disk, booted to
 * VIREO-READY by `vireo run` (a fresh process each run) and by the page `vireo web` serves, in Debian's
 * chromium driven by playwright-core (a fresh browser context each run, so an empty Origin Private File
 * System: the first load fetches the images and copies the root disk in; then a reload boots from the
 * disk already there). Both run the same devices (virtio-blk root disk, virtio-rng, virtio-console),
 * 1 hart, 512 MiB, the built-in SBI, kernel command line `console=ttyS0 earlycon=sbi root=/dev/vda rw`.
 *
 * Times: Node from spawn to VIREO-READY on stdout; Chromium from the page's navigation start to
 * VIREO-READY in the worker (the page's own "page load → shell prompt" figure). MIPS: the page's at
 * VIREO-READY (instructions / seconds since the machine was created); Node's from --stats, over its whole
 * run: `vireo run` only ends when the guest powers off (stdin's EOF does not reach the guest's shell),
 * so Node's runs add `vireo.check=1`, whose checks (a `sleep 1` among them) follow VIREO-READY and end
 * in a power-off.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { findImage, type Image } from "./boot.js";
import { parseStats } from "./cpu.js";
import { repoRoot } from "./lib/paths.js";
import { failureReason, runTimed, tail } from "./lib/proc.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { summarize } from "./lib/stats.js";
import { fmt, renderTable } from "./lib/table.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const VIREO_CLI = join(repoRoot, "dist", "src", "cli", "main.js");
const SITE = join(repoRoot, "dist", "web-site", "index.html");
const CMDLINE = "console=ttyS0 earlycon=sbi root=/dev/vda rw";
type Engine = "interpret" | "translate";
const ENGINES: readonly Engine[] = ["interpret", "translate"];

interface Sample {
  readySeconds: number;
  mips: number;
}

type Key = `${"node" | "chromium-first" | "chromium-reload"}-${Engine}`;

const LABELS: Record<Key, string> = {
  "node-interpret": "Node, `vireo run`, interpreter",
  "chromium-first-interpret": "Chromium, first load (disk copied into OPFS), interpreter",
  "chromium-reload-interpret": "Chromium, reload (disk in OPFS), interpreter",
  "node-translate": "Node, `vireo run`, translator",
  "chromium-first-translate": "Chromium, first load (disk copied into OPFS), translator",
  "chromium-reload-translate": "Chromium, reload (disk in OPFS), translator",
};

export async function nodeRun(image: Image, engine: Engine, options: BenchOptions): Promise<Sample | string> {
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-browser-"));
  try {
    const disk = join(dir, "rootfs.ext4");
    copyFileSync(join(image.dir, "rootfs.ext4"), disk);
    const args = [
      VIREO_CLI,
      "run",
      "--kernel",
      image.kernel,
      "--initrd",
      image.initrd,
      "--drive",
      `file=${disk}`,
    ];
    args.push(
      "--rng",
      "--virtio-console",
      "--append",
      `${CMDLINE} vireo.check=1`,
      "--stats",
      "--engine",
      engine === "interpret" ? "interpreter" : engine,
    );
    const r = await runTimed(process.execPath, args, {
      timeoutMs: options.timeoutMs,
      marks: ["VIREO-READY"],
    });
    const ready = r.marks["VIREO-READY"];
    const stats = parseStats(r.stderr);
    const failed = failureReason(r);
    if (failed !== undefined || ready === undefined || stats === undefined) {
      return `${failed ?? "no VIREO-READY or no stats"}\n${tail(r.stdout)}\n${tail(r.stderr)}`;
    }
    return { readySeconds: ready, mips: stats.mips };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits for the page's VIREO-READY and reads its time and MIPS (or the page's error). */
async function pageReady(page: Page, timeoutMs: number): Promise<Sample | string> {
  type State = { readyMs: number | null; instructions: number; seconds: number };
  await page.waitForFunction(
    () =>
      (window as unknown as { vireo?: State }).vireo?.readyMs != null ||
      (document.getElementById("error")?.textContent ?? "") !== "",
    null,
    { timeout: timeoutMs, polling: 200 },
  );
  const error = (await page.textContent("#error")) ?? "";
  if (error !== "") return `the page reports: ${error}`;
  const s = await page.evaluate(() => (window as unknown as { vireo: State }).vireo);
  return { readySeconds: (s.readyMs as number) / 1000, mips: s.instructions / s.seconds / 1e6 };
}

async function chromiumRun(
  url: string,
  engine: Engine,
  options: BenchOptions,
): Promise<[Sample, Sample] | string> {
  const args = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, args });
  try {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${url}?engine=${engine}`);
    const first = await pageReady(page, options.timeoutMs);
    if (typeof first === "string") return first;
    await page.reload();
    const second = await pageReady(page, options.timeoutMs);
    if (typeof second === "string") return second;
    return [first, second];
  } catch (e) {
    return (e as Error).message;
  } finally {
    await browser.close();
  }
}

async function startServer(): Promise<{ url: string; server: ChildProcess }> {
  const server = spawn(process.execPath, [VIREO_CLI, "web", "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = "";
    server.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const m = /serving (http:\/\/\S+)/.exec(seen);
      if (m !== null) resolve(m[1] as string);
    });
    server.once("exit", (code) => reject(new Error(`vireo web exited (${code}): ${seen}`)));
  });
  return { url, server };
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const image = findImage();
  if (typeof image === "string") {
    process.stdout.write(`skipped: ${image}\n`);
    return "skipped";
  }
  if (!existsSync(CHROMIUM)) {
    process.stdout.write(`skipped: no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)\n`);
    return "skipped";
  }
  if (!existsSync(SITE)) {
    process.stdout.write(`skipped: ${SITE} does not exist (npm run build:web)\n`);
    return "skipped";
  }
  const samples = new Map<Key, Sample[]>();
  const add = (key: Key, s: Sample) => samples.set(key, [...(samples.get(key) ?? []), s]);
  const failures: string[] = [];
  const { url, server } = await startServer();
  try {
    // Interleaved, so that load changes on a shared machine hit every configuration alike.
    for (let i = 1; i <= options.runs; i++) {
      for (const engine of ENGINES) {
        const node = await nodeRun(image, engine, options);
        if (typeof node === "string") failures.push(`node ${engine} run ${i}: ${node}`);
        else add(`node-${engine}`, node);
        const page = await chromiumRun(url, engine, options);
        if (typeof page === "string") failures.push(`chromium ${engine} run ${i}: ${page}`);
        else {
          add(`chromium-first-${engine}`, page[0]);
          add(`chromium-reload-${engine}`, page[1]);
        }
        process.stdout.write(`run ${i} ${engine}: done\n`);
      }
    }
  } finally {
    server.kill("SIGTERM");
  }
  const rows = (Object.keys(LABELS) as Key[]).map((key) => {
    const s = samples.get(key) ?? [];
    if (s.length === 0) return [LABELS[key], "0", "–", "–"];
    const ready = summarize(s.map((x) => x.readySeconds));
    const mips = summarize(s.map((x) => x.mips));
    return [
      LABELS[key],
      String(s.length),
      `${fmt(ready.median, 2)} (${fmt(ready.min, 2)}–${fmt(ready.max, 2)})`,
      `${fmt(mips.median, 1)} (${fmt(mips.min, 1)}–${fmt(mips.max, 1)})`,
    ];
  });
  process.stdout.write(
    renderTable(
      ["configuration", "ok", "to VIREO-READY s, median (min–max)", "MIPS, median (min–max)"],
      rows,
    ),
  );
  for (const f of failures) process.stdout.write(`failed: ${f}\n`);
  return failures.length === 0 ? "ok" : "failed";
}

export const browserSection: BenchSection = { name: "browser", title: "Vireo in a browser tab vs Node", run };
