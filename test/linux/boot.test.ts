import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { riscv64Image } from "../support/guest-image.js";
import { before, describe, test } from "../support/test.js";

/**
 * Boots the stock Debian riscv64 kernel with the default initramfs in check mode (its /init prints
 * CHECK lines and powers off): once with the built-in SBI, once on two harts, once under OpenSBI.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";
const APPEND = "console=ttyS0 earlycon=sbi vireo.check=1";
const BOOT_TIMEOUT_MS = 240_000;

const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
let image: { kernel: string; initrd: string } | null = null;

interface Boot {
  status: number | null;
  stdout: string;
  stderr: string;
}

function boot(...extra: string[]): Promise<Boot> {
  const { kernel, initrd } = image as { kernel: string; initrd: string };
  const args = [main, "run", "--kernel", kernel, "--initrd", initrd, "--append", APPEND, "--stats", ...extra];
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), BOOT_TIMEOUT_MS);
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

function checks(out: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of out.matchAll(/^CHECK ([\w-]+)=(.*?)\r?$/gm)) found.set(m[1] as string, m[2] as string);
  return found;
}

function assertHealthyBoot(r: Boot, harts: number): void {
  const context = `status ${r.status}\n--- stdout (tail)\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr}`;
  assert.equal(r.status, 0, context);
  assert.match(r.stdout, /Linux version 6\.\d+/, context);
  assert.match(r.stdout, /VIREO-READY/, context);
  const c = checks(r.stdout);
  assert.equal(c.get("arch"), "riscv64", context);
  assert.equal(c.get("harts"), String(harts), context);
  assert.equal(c.get("pipeline"), "two", context);
  assert.equal(c.get("date-advances"), "yes", context);
  assert.match(r.stdout, /CHECK done/, context);
  assert.match(r.stdout, /reboot: Power down/, context);
}

describe("Debian Linux on the riscv64 virt machine", { concurrency: 1 }, () => {
  before(async () => {
    if (!hasApt) return;
    image = await riscv64Image();
  });

  test("boots to its check-mode init and powers off (built-in SBI)", {
    timeout: BOOT_TIMEOUT_MS + 30_000,
  }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    const r = await boot();
    assertHealthyBoot(r, 1);
    assert.match(r.stderr, /^stats: hypercalls .*time|^stats: hypercalls .*dbcn/m);
    assert.match(r.stderr, /^stats: interrupts .*sti=\d+/m);
  });

  test("brings up a second hart through SBI HSM", { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    const r = await boot("--cpus", "2");
    assertHealthyBoot(r, 2);
    assert.match(r.stdout, /smp: Brought up 1 node, 2 CPUs/);
    assert.match(r.stderr, /^stats: hypercalls .*hsm=1/m);
    assert.match(r.stderr, /^stats: interrupts .*ssi=\d+/m);
  });

  test("boots on the binary translator (two harts), hot code run as compiled wasm", {
    timeout: BOOT_TIMEOUT_MS + 30_000,
  }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    const r = await boot("--engine", "translate", "--cpus", "2");
    assertHealthyBoot(r, 2);
    const line = /^stats: translation (.*)$/m.exec(r.stderr)?.[1] ?? "";
    const blocks = Number(/blocks=(\d+)/.exec(line)?.[1] ?? 0);
    const retired = Number(/translated-retired=(\d+)/.exec(line)?.[1] ?? 0);
    process.stdout.write(`# translate: ${line}\n`);
    assert.ok(blocks > 0 && retired > 0, `no translated code ran: '${line}'`);
  });

  test("boots the same kernel under OpenSBI (firmware in guest M-mode)", {
    timeout: BOOT_TIMEOUT_MS + 30_000,
  }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    if (!existsSync(OPENSBI)) return t.skip(`${OPENSBI} missing: apt-get install opensbi`);
    const r = await boot("--bios", OPENSBI);
    assert.match(r.stdout, /OpenSBI v\d/);
    assertHealthyBoot(r, 1);
    // The kernel's ECALLs now trap into OpenSBI instead of being answered by Vireo.
    assert.match(r.stderr, /^stats: hypercalls none$/m);
    assert.match(r.stderr, /^stats: traps .*ecall-s=\d+/m);
  });
});
