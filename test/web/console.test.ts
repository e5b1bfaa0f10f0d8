/**
 * The daemon's web console in a real browser: Debian's chromium driven by playwright-core against
 * `vireo daemon --web` on a free port. A wrong token is refused and the page says so; the right one
 * logs in; a VM made through the create form from the default image's files, uploaded from the
 * browser, boots (once in this file), and
 * `uname -m` typed into the xterm.js terminal answers riscv64 on the page; the MIPS chart's data
 * moves; it pauses, resumes and takes a balloon target; it stops and is deleted from its page.
 * Screenshots go to test-output/web/.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { cli, repoRoot, sleep } from "../api/support.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BOOT_TIMEOUT_MS = 300_000;
const SHOTS = join(repoRoot, "test-output", "web");

interface WebDaemon {
  child: ChildProcess;
  url: string;
  token: string;
  log(): string;
}

/** `vireo daemon --web 127.0.0.1:0` (the kernel picks a free port); resolves once it listens. */
function startWebDaemon(dir: string): Promise<WebDaemon> {
  const child = spawn(
    process.execPath,
    [
      cli,
      "daemon",
      "--socket",
      join(dir, "vireo.sock"),
      "--state-dir",
      join(dir, "state"),
      "--web",
      "127.0.0.1:0",
      "--warm-workers",
      "0",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  return new Promise((ready, fail) => {
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
      const web = /web console on (http:\/\/[^/\s]+\/)/.exec(stderr);
      const token = /API token \(shown once[^)]*\): ([0-9a-f]{64})/.exec(stderr);
      if (web !== null && token !== null && stderr.includes("listening on")) {
        ready({ child, url: web[1] as string, token: token[1] as string, log: () => stderr });
      }
    });
    child.on("exit", (code) => fail(new Error(`daemon exited with ${code} before listening:\n${stderr}`)));
  });
}

/** What the terminal shows now, a line per row (xterm.js's DOM renderer draws its rows as text). */
const terminalText = (page: Page) =>
  page.evaluate(() =>
    [...(document.querySelector("#terminal .xterm-rows")?.children ?? [])]
      .map((row) => row.textContent)
      .join("\n"),
  );

/** The error list at the top of the page, which a healthy run leaves empty. */
const pageErrors = (page: Page) => page.locator("#errors li").allInnerTexts();

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

describe("the web console (vireo daemon --web) in chromium", () => {
  const missing = existsSync(CHROMIUM) ? null : `no chromium at ${CHROMIUM} (set CHROMIUM to another)`;
  let dir = "";
  let daemon: WebDaemon | null = null;
  let browser: Browser | null = null;
  before(async () => {
    if (missing !== null) return;
    mkdirSync(SHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "vireo-web-"));
    daemon = await startWebDaemon(dir);
    // Chromium's sandbox cannot start as root (CI runs as root).
    const root = process.getuid?.() === 0;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: root ? ["--no-sandbox"] : [] });
  });
  after(async () => {
    await browser?.close();
    if (daemon !== null) {
      const exited = new Promise((done) => daemon?.child.once("exit", done));
      daemon.child.kill("SIGTERM");
      await exited;
    }
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  test("a wrong token is refused, and the page says so", { timeout: 60_000 }, async (t) => {
    if (missing !== null || daemon === null || browser === null) return t.skip(missing ?? "no daemon");
    const page = await browser.newPage();
    try {
      await page.goto(daemon.url);
      await page.locator("#token").fill("0".repeat(64));
      await page.locator("#login-form button[type=submit]").click();
      await page.locator("#login-message", { hasText: "Wrong token" }).waitFor();
      await shot(page, "login-refused");
      // The API itself refuses a request without the cookie.
      const answer = await page.evaluate(async () => (await fetch("/vms")).status);
      assert.equal(answer, 401);
    } finally {
      await page.close();
    }
  });

  test("log in, create a VM from the default image, type into its console, watch MIPS, drive it, delete", {
    timeout: BOOT_TIMEOUT_MS,
  }, async (t) => {
    if (missing !== null || daemon === null || browser === null) return t.skip(missing ?? "no daemon");
    await riscv64Image();
    const d = daemon;
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const context = async () =>
      `errors on the page: ${JSON.stringify(await pageErrors(page).catch(() => []))}\n` +
      `terminal:\n${await terminalText(page).catch(() => "(none)")}\n--- daemon log (tail)\n${d.log().slice(-2000)}`;
    try {
      await page.goto(d.url);
      await page.locator("#token").fill(d.token);
      await page.locator("#login-form button[type=submit]").click();
      await page.locator("#vm-table").waitFor();
      const cookies = await page.context().cookies();
      const cookie = cookies.find((c) => c.name === "vireo_token");
      assert.ok(cookie?.httpOnly === true && cookie.sameSite === "Strict", JSON.stringify(cookies));

      await page.goto(`${d.url}#/host`);
      await page.locator("#host-table", { hasText: "shared pool CPUs" }).waitFor();
      await shot(page, "host");

      await page.goto(`${d.url}#/create`);
      await page.locator("#image-note", { hasText: "default Debian image" }).waitFor();
      assert.match(await page.locator("#f-kernel").inputValue(), /riscv64/);
      // Boot files picked on this machine: uploaded to the daemon, and the fields then name the copies.
      for (const file of ["kernel", "initrd"]) {
        const cached = await page.locator(`#f-${file}`).inputValue();
        await page.locator(`#f-${file}-upload`).setInputFiles(cached);
        await page.locator(`#f-${file}-status`, { hasText: "uploaded" }).waitFor();
        const uploaded = await page.locator(`#f-${file}`).inputValue();
        assert.ok(uploaded.includes("/uploads/") && uploaded !== cached, uploaded);
        assert.deepEqual(readFileSync(uploaded), readFileSync(cached), `the uploaded ${file} is the file`);
      }
      await page.locator("#f-name").fill("web-guest");
      await shot(page, "create");
      await page.locator("#create-submit").click();
      await page.waitForURL(/#\/vm\/web-guest$/);
      await page.locator("#vm-state", { hasText: "created" }).waitFor();

      // The same name with another spec: the daemon's 409 is shown on the page, not swallowed.
      await page.goto(`${d.url}#/create`);
      await page.locator("#image-note", { hasText: "default Debian image" }).waitFor();
      await page.locator("#f-name").fill("web-guest");
      await page.locator("#f-cpus").fill("2");
      await page.locator("#create-submit").click();
      const refused = page.locator("#errors li", { hasText: "409" });
      await refused.waitFor();
      await shot(page, "create-refused");
      await refused.locator("button").click();
      await page.goto(`${d.url}#/vm/web-guest`);
      await page.locator("#vm-state", { hasText: "created" }).waitFor();

      await page.locator("#action-start").click();
      await page.locator("#vm-state", { hasText: "running" }).waitFor();
      // The guest's /init says VIREO-READY, then starts a shell on the console.
      await page
        .locator("#terminal .xterm-rows", { hasText: "VIREO-READY" })
        .waitFor({ timeout: BOOT_TIMEOUT_MS - 60_000 })
        .catch(async (e: Error) => assert.fail(`${e.message}\n${await context()}`));
      await page.locator("#terminal .xterm-helper-textarea").focus();
      await page.keyboard.type("uname -m");
      await page.keyboard.press("Enter");
      // The echo is "… uname -m"; the answer is a line of its own, in well under a minute.
      const deadline = performance.now() + 60_000;
      while (!/^riscv64\s*$/m.test(await terminalText(page))) {
        if (performance.now() > deadline) assert.fail(`no riscv64 line in the terminal\n${await context()}`);
        await sleep(250);
      }

      // The chart moves: more points come, and the guest runs instructions between them.
      const mips = page.locator("#chart-mips");
      const points = async () => Number(await mips.getAttribute("data-points"));
      const first = await points();
      await page.waitForFunction(
        (n) => Number(document.querySelector("#chart-mips")?.getAttribute("data-points")) >= n + 2,
        first,
        { timeout: 30_000 },
      );
      const last = Number((await mips.getAttribute("data-last")) ?? "0");
      assert.ok(last > 0, `MIPS ${last} after ${await points()} points\n${await context()}`);
      await shot(page, "vm");

      // The list shows it running, with the share of a host CPU it gets.
      await page.goto(`${d.url}#/vms`);
      await page.locator('tr[data-vm="web-guest"]', { hasText: "running" }).waitFor();
      await page.locator('tr[data-vm="web-guest"] td', { hasText: /^\d+%$/ }).waitFor();
      await shot(page, "list");
      await page.goto(`${d.url}#/vm/web-guest`);
      await page.locator("#vm-state", { hasText: "running" }).waitFor();

      // The other buttons: pause and resume; the balloon target (the daemon answers its figures).
      await page.locator("#action-pause").click();
      await page.locator("#vm-state", { hasText: "paused" }).waitFor();
      await page.locator("#action-resume").click();
      await page.locator("#vm-state", { hasText: "running" }).waitFor();
      await page.locator("#balloon-target").fill("32");
      await page.locator("#balloon-form button[type=submit]").click();
      await page.locator("#balloon-now", { hasText: "target 32 MiB" }).waitFor();

      await page.locator("#action-stop").click();
      await page
        .locator("#vm-state", { hasText: "stopped" })
        .waitFor({ timeout: 60_000 })
        .catch(async (e: Error) => assert.fail(`${e.message}\n${await context()}`));
      await page.locator("#action-delete").click();
      await page.waitForURL(/#\/vms$/);
      await page.locator("#vm-table", { hasText: "No VMs yet." }).waitFor();
      await shot(page, "list-after-delete");
      assert.deepEqual(await pageErrors(page), [], await context());
    } finally {
      await page.close();
    }
  });
});
