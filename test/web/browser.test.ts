/**
 * Vireo in a browser tab, in a real browser: Debian's chromium driven by playwright-core opens the page
 * `vireo web` serves, the page's Web Worker boots the default guest (kernel, initramfs, the root disk
 * copied into OPFS) to VIREO-READY, a command typed into the xterm.js terminal is read back from the
 * page, a file written to the root disk is read back after a reload (the disk lives in OPFS): two boots.
 * Then "start the disk over" is checked to copy the disk in again, without waiting for a third boot.
 * Screenshots go to test-output/web/ (git-ignored).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { assertUserError, repoRoot, vireo, vireoMain } from "../cli/vireo.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = join(repoRoot, "test-output", "web");
/** A boot on a loaded 2-core machine took about a minute with the interpreter (now the translator is the default): room for several. */
const BOOT_MS = 5 * 60_000;
const COMMAND_MS = 60_000;

/**
 * What the terminal shows now, as the page renders it: xterm.js's DOM renderer's rows, one line each,
 * with non-breaking spaces as spaces and trailing blanks cut.
 */
function screen(page: Page): Promise<string> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll(".xterm-rows > div"), (row) =>
      (row.textContent ?? "").replace(/\u00a0/g, " ").trimEnd(),
    ).join("\n"),
  );
}

/** Waits for `pattern` on the terminal's screen; fails early with the page's error line, if any. */
async function waitForScreen(page: Page, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await screen(page);
    if (pattern.test(text)) return text;
    const error = await page.textContent("#error");
    assert.ok(error === null || error === "", `the page reports: ${error}`);
    assert.ok(
      Date.now() < deadline,
      `no ${pattern} on the terminal within ${timeoutMs} ms; it shows:\n${text}`,
    );
    await page.waitForTimeout(250);
  }
}

/** Waits for the guest's shell: VIREO-READY seen by the page, then the prompt. Returns readyMs. */
async function waitForShell(page: Page): Promise<number> {
  await page.waitForFunction(
    () => {
      const v = (window as unknown as { vireo?: { readyMs: number | null } }).vireo;
      return (v?.readyMs ?? null) !== null || (document.getElementById("error")?.textContent ?? "") !== "";
    },
    null,
    { timeout: BOOT_MS, polling: 500 },
  );
  const error = await page.textContent("#error");
  assert.equal(error, "", `the page reports: ${error}`);
  await waitForScreen(page, /^vireo:\/\S*#$/m, COMMAND_MS);
  return page.evaluate(() => (window as unknown as { vireo: { readyMs: number } }).vireo.readyMs);
}

/** The page's status lines since it loaded ("copying the root disk …"). */
function statuses(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { vireo: { statuses: string[] } }).vireo.statuses);
}

/** Types `line` and Enter into the terminal, as a person would. */
async function typeLine(page: Page, line: string): Promise<void> {
  await page.locator(".xterm").click();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

describe("vireo web", () => {
  test("bad --listen values are one-line usage errors", { timeout: 60_000 }, () => {
    assertUserError(vireo("web", "--listen", "nonsense"), /--listen nonsense: expected HOST:PORT/);
    assertUserError(vireo("web", "--listen", "8.8.8.8:80"), /not a loopback address/);
    assertUserError(vireo("web", "--listen-any"), /--listen-any only qualifies --listen/);
  });
});

describe("npm run build:web", () => {
  test("a Node module reaching the worker fails the build", { timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), "vireo-web-build-"));
    try {
      // The real worker, plus a project file that uses Node (the host's disk image files, on node:fs).
      const entry = join(dir, "worker.ts");
      const src = (path: string) => JSON.stringify(join(repoRoot, "src", path));
      writeFileSync(
        entry,
        `import ${src("web/browser/worker/main.ts")};\nimport ${src("host/block-file.ts")};\n`,
      );
      const build = (...args: string[]) =>
        spawnSync(
          process.execPath,
          [join(repoRoot, "scripts/build-web.js"), "--out", join(dir, "out"), ...args],
          {
            encoding: "utf8",
            timeout: 100_000,
          },
        );
      const refused = build("--worker", entry);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, /Node module 'node:fs' in browser code/);
      const fine = build();
      assert.equal(fine.status, 0, fine.stderr);
      assert.ok(existsSync(join(dir, "out", "worker.js")));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Vireo in a browser tab (chromium)", () => {
  const chromiumMissing = existsSync(CHROMIUM) ? null : `no chromium executable at ${CHROMIUM}`;
  if (chromiumMissing !== null) process.stdout.write(`skipping the browser test: ${chromiumMissing}\n`);
  let server: ChildProcess | null = null;
  let browser: Browser | null = null;
  let url = "";

  before(
    async () => {
      if (chromiumMissing !== null) return;
      await riscv64Image();
      // Built again here (a second or two), so a run of this file alone never tests a stale site.
      execFileSync(process.execPath, [join(repoRoot, "scripts/build-web.js")], { stdio: "inherit" });
      mkdirSync(SHOTS, { recursive: true });
      const s = spawn(process.execPath, [vireoMain, "web", "--listen", "127.0.0.1:0"], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      server = s;
      url = await new Promise<string>((resolve, reject) => {
        let seen = "";
        s.stdout?.on("data", (chunk: Buffer) => {
          seen += chunk.toString();
          const m = /serving (http:\/\/\S+)/.exec(seen);
          if (m !== null) resolve(m[1] as string);
        });
        s.once("exit", (code) => reject(new Error(`vireo web exited (${code}) before serving: ${seen}`)));
      });
      process.stdout.write(`vireo web at ${url}\n`);
      // Chromium's sandbox refuses to run as root.
      const args = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
      browser = await chromium.launch({ executablePath: CHROMIUM, args });
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await browser?.close();
      server?.kill("SIGTERM");
    },
    { timeout: 60_000 },
  );

  test("boots to VIREO-READY in a worker, runs a command, keeps a file on the OPFS disk across a reload", {
    timeout: 20 * 60_000,
    skip: chromiumMissing ?? false,
  }, async () => {
    // A fresh context: an empty OPFS, so the first boot copies the root disk in.
    const context = await (browser as Browser).newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(url);
    const firstMs = await waitForShell(page);
    process.stdout.write(`first boot: page load to VIREO-READY ${(firstMs / 1000).toFixed(2)} s\n`);
    assert.match((await page.textContent("#ready")) ?? "", /page load → shell prompt: \d+\.\d\d s/);
    assert.match((await statuses(page)).join("\n"), /copying the root disk \(\d+ bytes\) into OPFS/);
    await page.screenshot({ path: join(SHOTS, "1-booted.png") });

    // A command through the terminal; $((6*7)) makes the output differ from the echoed command line.
    await typeLine(page, "uname -m; echo answer-$((6*7))");
    const out = await waitForScreen(page, /^answer-42$/m, COMMAND_MS);
    assert.match(out, /^riscv64$/m);

    const token = randomBytes(8).toString("hex");
    process.stdout.write(`token written to the disk: ${token}\n`);
    await typeLine(page, `echo kept-${token} > /vireo-web-test.txt; sync; echo wrote-$?`);
    await waitForScreen(page, /^wrote-0$/m, COMMAND_MS);
    await page.screenshot({ path: join(SHOTS, "2-wrote-file.png") });

    await page.reload();
    const secondMs = await waitForShell(page);
    process.stdout.write(`after reload: page load to VIREO-READY ${(secondMs / 1000).toFixed(2)} s\n`);
    assert.match((await statuses(page)).join("\n"), /root disk: the copy in OPFS \(\d+ bytes\)/);
    // The file's contents do not appear in the command that reads them.
    await typeLine(page, "cat /vireo-web-test.txt | tr k K");
    await waitForScreen(page, new RegExp(`^Kept-${token}$`, "m"), COMMAND_MS);
    await page.screenshot({ path: join(SHOTS, "3-read-after-reload.png") });
    // Starting the disk over removes the OPFS copy (the worker let go of it) and copies it in again.
    const reloaded = page.waitForEvent("load", { timeout: COMMAND_MS });
    await page.click("#reset-disk");
    await reloaded;
    await page.waitForFunction(
      () =>
        (window as unknown as { vireo?: { statuses: string[] } }).vireo?.statuses.some((s) =>
          s.startsWith("copying the root disk"),
        ) ?? false,
      null,
      { timeout: COMMAND_MS, polling: 100 },
    );
    assert.deepEqual(problems, []);
    await context.close();
  });
});
