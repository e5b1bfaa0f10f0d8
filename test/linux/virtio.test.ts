import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

/**
 * The Debian kernel's own virtio drivers (modules in the default initramfs) against Vireo's devices:
 * two disks (one read-only), the entropy device and the virtio console, exercised from the guest's
 * check-mode init and a small script passed on the command line; once with packed virtqueues offered
 * (the default: Linux negotiates VIRTIO_F_RING_PACKED, feature bit 34) on the interpreter, and once with
 * --virtio-ring split on the binary translator (`--engine translate`: device DMA into pages holding
 * translated code, guest drivers running translated).
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const main = join(root, "dist/src/cli/main.js");
const BOOT_TIMEOUT_MS = 300_000;
const scratch = mkdtempSync(join(tmpdir(), "vireo-virtio-linux-"));
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
let image: { kernel: string; initrd: string } | null = null;
let hasModules = false;

/** Runs in the guest after the checks (its output goes to the serial console). */
const SCRIPT = [
  "cat /sys/block/vda/serial;echo;echo vdb-ro=$(cat /sys/block/vdb/ro)",
  "echo guest-wrote-this|dd of=/dev/vda bs=512 seek=1 conv=sync,fsync 2>/dev/null",
  "dd if=/dev/vda bs=16 skip=64 count=1 2>/dev/null;echo",
  "dd if=/dev/zero of=/dev/vdb count=1 2>/dev/null||echo vdb-write-refused",
  'echo "hvc0-got:$(timeout 30 head -n1 /dev/hvc0)"',
  // The features file is one character per bit, bit 0 first: character 35 is VIRTIO_F_RING_PACKED.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'for d in /sys/bus/virtio/devices/virtio*;do echo "ring-packed ${d##*/} $(cut -c35 $d/features)";done',
].join("\n");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], input: string): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [main, "run", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let typed = false;
    child.stdout.on("data", (d) => {
      stdout += d;
      // Typed once the check-mode init has written to hvc0 (opening and closing the tty there would
      // discard input that arrived before): the script's reader gets it, even if it opens hvc0 later.
      if (!typed && stdout.includes("VIREO-HVC0")) {
        typed = true;
        child.stdin.write(input);
      }
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

after(() => rmSync(scratch, { recursive: true, force: true }));

describe("Linux virtio drivers on Vireo's devices", { concurrency: 1 }, () => {
  before(async () => {
    if (!hasApt) return;
    image = await riscv64Image();
    hasModules = gunzipSync(readFileSync(image.initrd)).includes("virtio_blk.ko");
  });

  for (const [ring, engine] of [
    ["packed", "interpreter"],
    ["split", "translate"],
  ] as const)
    test(`virtio-blk (rw and ro), virtio-rng and virtio-console work from the guest (--virtio-ring ${ring}, --engine ${engine})`, {
      timeout: BOOT_TIMEOUT_MS + 30_000,
    }, async (t) => {
      if (!image) return t.skip("apt-get is not available to fetch the Debian image");
      if (!hasModules) return t.skip("the default initramfs carries no virtio modules");
      const a = join(scratch, "a.img");
      const b = join(scratch, "b.img");
      const diskA = new Uint8Array(1 << 20);
      diskA.set(Buffer.from("HOST-MARKER-1234"), 1024);
      writeFileSync(a, diskA);
      const diskB = new Uint8Array(2 << 20).fill(0x42);
      writeFileSync(b, diskB);
      const append = `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${Buffer.from(SCRIPT).toString("base64")}`;
      const r = await run(
        [
          ...["--kernel", image.kernel, "--initrd", image.initrd, "--append", append],
          ...[
            "--drive",
            `file=${a},id=vireo-a`,
            "--drive",
            `file=${b},readonly=on`,
            "--rng",
            "--virtio-console",
            ...(ring === "split" ? ["--virtio-ring", "split"] : []),
            ...["--engine", engine, "--stats"],
          ],
        ],
        "ping-hvc0\n",
      );
      const context = `status ${r.status}\n--- stdout (tail)\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr}`;
      assert.equal(r.status, 0, context);
      const out = r.stdout.replaceAll("\r", "");
      assert.match(
        out,
        /^CHECK virtio=virtio_blk,virtio_blk,virtio_rng,virtio_console,virtio_input$/m,
        context,
      );
      assert.match(out, /^CHECK virtio-blk=\/dev\/vda size=1048576$/m, context);
      assert.match(out, /^CHECK virtio-blk=\/dev\/vdb size=2097152$/m, context);
      assert.match(out, /^CHECK hwrng=64 source=virtio_rng/m, context);
      assert.match(out, /^CHECK hvc0=yes$/m, context);
      assert.match(out, /VIREO-HVC0/, "the guest's hvc0 output reaches the terminal");
      assert.match(out, /^vireo-a$/m, "GET_ID serial");
      assert.match(out, /^vdb-ro=1$/m, context);
      assert.match(out, /^HOST-MARKER-1234$/m, "read from the disk");
      assert.match(out, /^vdb-write-refused$/m, context);
      assert.match(out, /^hvc0-got:ping-hvc0$/m, "terminal input reaches hvc0");
      assert.match(out, /^CHECK run-status=0$/m, context);
      // The five devices' (the default keyboard last) negotiated features: RING_PACKED exactly when it
      // was offered.
      const packed = [...out.matchAll(/^ring-packed virtio\d+ ([01])$/gm)].map((m) => m[1]);
      assert.deepEqual(
        packed,
        ["1", "1", "1", "1", "1"].map((b) => (ring === "packed" ? b : "0")),
        context,
      );
      const written = readFileSync(a);
      assert.equal(
        written.subarray(512, 529).toString(),
        "guest-wrote-this\n",
        "the guest's write is in the image",
      );
      assert.ok(written.subarray(529, 1024).every((x) => x === 0));
      assert.deepEqual(readFileSync(b), Buffer.from(diskB), "the read-only image is unchanged");
      // The transports counted the driver's notifications and their interrupts, per slot.
      assert.match(
        r.stderr,
        /^stats: virtio0 virtio-blk irq=\d+ notifications=[1-9]\d* interrupts=[1-9]\d*$/m,
      );
      assert.match(
        r.stderr,
        /^stats: virtio2 virtio-rng irq=\d+ notifications=[1-9]\d* interrupts=[1-9]\d*$/m,
      );
      if (engine === "translate") {
        const retired = Number(/translated-retired[= ](\d+)/.exec(r.stderr)?.[1] ?? 0);
        process.stdout.write(`# translate: ${retired} instructions retired in translated code\n`);
        assert.ok(retired > 0, `no translated code ran:\n${r.stderr}`);
      }
    });
});
