import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import type { VirtioInput } from "../../src/devices/virtio/input/virtio-input.js";
import { findTool } from "../../src/images/rootfs.js";
import { createVm } from "../../src/vm/create.js";
import type { VmSpec } from "../../src/vm/spec.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, test } from "../support/test.js";

/**
 * vm.stop() on a riscv64 Linux guest is a clean power-off, not a kill: stop() presses Ctrl-Alt-Del on
 * the VM's virtio keyboard, the kernel (ctrl-alt-del set to 0 by /init) signals INT to init, and init
 * syncs, remounts the root disk read-only and powers off. The guest types a file into its read-write
 * ext4 root just before, without syncing; afterwards the file is on the disk and the filesystem is
 * clean. The grace period is long: only the guest's own power-off ends the run in time to pass.
 */
const TIMEOUT_MS = 300_000;
const GRACE_MS = 120_000;
const scratch = mkdtempSync(join(tmpdir(), "vireo-poweroff-"));
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;

after(() => rmSync(scratch, { recursive: true, force: true }));

/** Resolves when `check` holds, polling every 20 ms (the test's timeout bounds it). */
function until(check: () => boolean): Promise<void> {
  return new Promise((done) => {
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer);
        done();
      }
    }, 20);
  });
}

test("vm.stop() powers a Linux guest off cleanly through the virtio keyboard; its last write is on the disk", {
  timeout: TIMEOUT_MS,
}, async (t) => {
  if (!hasApt) return t.skip("apt-get is not available to fetch the Debian image");
  const debugfs = findTool("debugfs");
  const e2fsck = findTool("e2fsck");
  if (debugfs === undefined || e2fsck === undefined)
    return t.skip("debugfs/e2fsck not installed: apt-get install e2fsprogs");
  const image = await riscv64Image();
  if (!gunzipSync(readFileSync(image.initrd)).includes("virtio_input.ko"))
    return t.skip("the default initramfs carries no virtio_input module (an image from before it)");
  const { prepareWritableRootDisk, withRootDisk } = await import("../../src/images/riscv64.js");
  const root = await prepareWritableRootDisk({ path: join(scratch, "root.ext4"), quiet: true });

  let out = "";
  const spec: VmSpec = {
    name: "poweroff",
    arch: "riscv64",
    engine: "auto",
    cpus: 1,
    memory: 256 * 2 ** 20,
    boot: { kernel: root.kernel, initrd: root.initrd, cmdline: withRootDisk("console=ttyS0 earlycon=sbi") },
    drives: [{ path: root.disk, readOnly: false, id: "root" }],
    nics: [],
    rng: false,
    console: false,
    virtioRing: "packed",
  };
  const vm = await createVm(spec, nodeVmHost({ console: { write: (b) => (out += String.fromCharCode(b)) } }));
  const keyboard = vm.devices().find((d) => d.kind === "virtio-input")?.device as VirtioInput | undefined;
  assert.ok(keyboard, "a riscv64 Linux boot gets the keyboard without asking");
  const context = () => `--- guest output (tail)\n${out.slice(-4000).replaceAll("\r", "")}`;
  vm.start();
  // Busybox's line editing asks for the cursor position (ESC [6n) after its prompt.
  const prompt = () => /vireo:[^\n]*# $/.test(out.replaceAll("\u001b[6n", ""));
  await until(() => prompt() || vm.state.name !== "running");
  assert.equal(vm.state.name, "running", context());
  assert.match(out, /VIREO-READY/, context());

  const marker = `written-just-before-stop-${process.pid}`;
  // No sync: the guest's power-off path must write it out.
  vm.input(Buffer.from(`echo ${marker} > /root/last-write; echo WROTE-\${PPID:+x}\n`));
  await until(() => out.includes("WROTE-x") || vm.state.name !== "running");
  assert.equal(vm.state.name, "running", context());

  const t0 = performance.now();
  const exit = await vm.stop({ graceMs: GRACE_MS });
  const seconds = (performance.now() - t0) / 1000;
  t.diagnostic(`clean stop took ${seconds.toFixed(2)} s (Ctrl-Alt-Del to power-off)`);
  process.stdout.write(`poweroff: clean stop took ${seconds.toFixed(2)} s\n`);
  assert.equal(
    exit.reason,
    "exit",
    `the guest powered itself off, not the grace period's kill\n${context()}`,
  );
  assert.deepEqual(exit, { reason: "exit", code: 0, reboot: false }, context());
  const stats = keyboard.stats;
  assert.equal(stats.delivered, 12, "one Ctrl-Alt-Del: six key changes, each with EV_SYN");
  assert.equal(stats.dropped, 0);

  const cat = spawnSync(debugfs, ["-R", "cat /root/last-write", root.disk], { encoding: "utf8" });
  assert.equal(cat.stdout.trim(), marker, `${cat.stderr}\n${context()}`);
  const fsck = spawnSync(e2fsck, ["-n", "-f", root.disk], { encoding: "utf8" });
  assert.equal(fsck.status, 0, `unmounted clean (remounted read-only):\n${fsck.stdout}${fsck.stderr}`);
});
