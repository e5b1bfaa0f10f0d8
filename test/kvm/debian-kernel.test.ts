/**
 * The stock Debian amd64 kernel (the system suite's linux-image-amd64 dependency, fetched with apt-get
 * download) up to its "Linux version" banner. The bzImage's xz decompressor is far too slow on nested
 * kvm_pvm hosts, so the test boots the vmlinux inside it (extracted with xz) through the PVH entry and
 * stops the VM once the banner is out. Skipped without /dev/kvm, apt-get/dpkg-deb/xz, or the network.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "../support/test.js";
import { cli, kvmUnavailable } from "./support.js";

const BANNER_TIMEOUT_MS = 180_000;
const cacheDir = join(tmpdir(), "vireo-test-debian-amd64-kernel");

function tool(name: string): boolean {
  return !spawnSync(name, ["--version"], { stdio: "ignore" }).error;
}

const why =
  kvmUnavailable() ??
  (["apt-get", "apt-cache", "dpkg-deb", "xz"].every(tool) ? undefined : "apt-get, dpkg-deb or xz missing");
if (why !== undefined) console.log(`# skipping the Debian kernel test: ${why}`);

/** The uncompressed kernel inside a bzImage: the xz stream after the setup code, decompressed. */
function extractVmlinux(bzImage: string, out: string): void {
  const bytes = readFileSync(bzImage);
  const at = bytes.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) throw new Error(`${bzImage}: no xz stream (not an xz-compressed kernel)`);
  const r = spawnSync("xz", ["-dc", "--single-stream"], {
    input: bytes.subarray(at),
    maxBuffer: 512 * 2 ** 20,
  });
  if (r.status !== 0 || r.stdout.length === 0) throw new Error(`xz failed: ${r.stderr}`);
  writeFileSync(`${out}.tmp`, r.stdout);
  renameSync(`${out}.tmp`, out);
}

/** Downloads and unpacks the kernel once per version; null (with a printed reason) when apt cannot. */
function fetchKernel(): string | null {
  const deps = spawnSync("apt-cache", ["depends", "linux-image-amd64"], { encoding: "utf8" });
  const name = /Depends: (linux-image-[\w.+-]+-amd64)\b/.exec(deps.stdout ?? "")?.[1];
  if (name === undefined) {
    console.log("# skipping: apt-cache does not know linux-image-amd64");
    return null;
  }
  const dir = join(cacheDir, name);
  const vmlinux = join(dir, "vmlinux");
  if (existsSync(vmlinux)) return vmlinux;
  mkdirSync(dir, { recursive: true });
  const download = spawnSync("apt-get", ["download", name], { cwd: dir, encoding: "utf8", timeout: 300_000 });
  const deb = readdirSync(dir).find((f) => f.endsWith(".deb"));
  if (download.status !== 0 || deb === undefined) {
    console.log(`# skipping: apt-get download ${name} failed (no network?): ${download.stderr?.trim()}`);
    return null;
  }
  const root = join(dir, "root");
  const unpack = spawnSync("dpkg-deb", ["-x", join(dir, deb), root], { encoding: "utf8" });
  if (unpack.status !== 0) throw new Error(`dpkg-deb -x failed: ${unpack.stderr}`);
  const bootDir = join(root, "boot");
  const vmlinuz = readdirSync(bootDir).find((f) => f.startsWith("vmlinuz-"));
  if (vmlinuz === undefined) throw new Error(`no vmlinuz in ${name}`);
  extractVmlinux(join(bootDir, vmlinuz), vmlinux);
  return vmlinux;
}

describe("stock Debian amd64 kernel on KVM", { skip: why }, () => {
  let vmlinux: string | null = null;
  before(() => {
    vmlinux = fetchKernel();
  });

  test("boots through PVH to its Linux version banner", {
    timeout: BANNER_TIMEOUT_MS + 30_000,
  }, async (t) => {
    if (vmlinux === null) {
      t.skip("no kernel (see above)");
      return;
    }
    const args = [
      cli,
      "run",
      "--arch",
      "x86_64",
      "--kernel",
      vmlinux,
      "--memory",
      "512M",
      // kvm_pvm cannot emulate cmpxchg16b or xrstor for a guest kernel: keep Linux off them.
      "--cpu-features",
      "-cx16",
      "--append",
      "console=ttyS0 earlyprintk=serial,ttyS0,115200 noxsave reboot=k panic=1",
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const banner = /Linux version (\d+\.\d+\.\d+-\d+-amd64) \(debian-kernel@lists\.debian\.org\)[^\n]*\n/;
    const found = await new Promise<boolean>((done) => {
      const timer = setTimeout(() => done(false), BANNER_TIMEOUT_MS);
      child.stdout.on("data", (d) => {
        stdout += d;
        if (banner.test(stdout)) {
          clearTimeout(timer);
          done(true);
        }
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      child.on("close", () => {
        clearTimeout(timer);
        done(banner.test(stdout));
      });
    });
    child.kill("SIGKILL");
    assert.ok(found, `no banner\n--- stdout\n${stdout.slice(-3000)}\n--- stderr\n${stderr}`);
    console.log(`# ${/Linux version [^\r\n]*/.exec(stdout)?.[0]}`);
  });
});
