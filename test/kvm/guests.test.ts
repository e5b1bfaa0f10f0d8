/**
 * The x86 test guests (test/guest-x86) on the KVM engine through the CLI, with exact output checks.
 * Skipped, with the reason printed, where /dev/kvm cannot be opened or binutils are missing.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "../support/test.js";
import { describeRun, guest, guestImages, kvmUnavailable, type Run, vireo } from "./support.js";

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (why !== undefined) console.log(`# skipping KVM guest tests: ${why}`);

const x86 = (name: string, ...args: string[]) =>
  vireo(["run", "--arch", "x86_64", "--kernel", guest(name), ...args]);

/** stderr without the "engine kvm" notice of --engine auto. */
function stderrLines(r: Run): string[] {
  return r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("vireo: engine kvm"));
}

function assertReboot(r: Run): void {
  assert.equal(r.status, 0, describeRun(r));
  assert.deepEqual(stderrLines(r), ["vireo: the guest asked for a reboot; stopping"], describeRun(r));
}

describe("x86-64 guests on KVM", { skip: why }, () => {
  test("hello: long-mode entry through the bzImage path, boot_params, UART, i8042 reset", async () => {
    const dir = (guestImages() as { dir: string }).dir;
    const initrdPath = join(dir, "hello-initrd.txt");
    writeFileSync(initrdPath, "an initrd line\nsecond line\n");
    const r = await x86("hello", "--append", "console=ttyS0 vireo.test=1", "--initrd", initrdPath);
    assertReboot(r);
    assert.equal(
      r.stdout,
      [
        "Hello from a 64-bit guest on KVM",
        "cmdline: console=ttyS0 vireo.test=1",
        "initrd: an initrd line",
        // [0, EBDA) RAM, [EBDA, 1 MiB) reserved, [1 MiB, 512 MiB) RAM
        "e820 entries: 3",
        "cs=16 efer.lma=1",
        "resetting",
        "",
      ].join("\n"),
    );
  });

  test("hello with memory above the 3-4 GiB hole gets a fourth e820 entry", async () => {
    const r = await x86("hello", "--memory", "3200M", "--engine", "kvm");
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout, /^e820 entries: 4$/m);
    assert.equal(r.stderr, "vireo: the guest asked for a reboot; stopping\n");
  });

  test("pvh: an ELF kernel entered in 32-bit protected mode with hvm_start_info", async () => {
    const dir = (guestImages() as { dir: string }).dir;
    const initrdPath = join(dir, "pvh-initrd.bin");
    writeFileSync(initrdPath, "module");
    const r = await x86("pvh.elf", "--append", "pvh test", "--initrd", initrdPath);
    assertReboot(r);
    assert.equal(r.stdout, "PVH entry, cmdline: pvh test\nmemmap entries: 3 modules: 1\n");
  });

  test("timer: PIT via the 8259 and LINT0, then the LAPIC timer, 10 interrupts each", async () => {
    const r = await x86("timer");
    assertReboot(r);
    assert.equal(r.stdout, "pit ticks: 10\nlapic ticks: 10\n");
  });

  for (const cpus of [1, 2, 4]) {
    test(`smp: ${cpus} vCPU(s) from the MADT, APs started by INIT/SIPI through a real-mode trampoline`, async () => {
      const r = await x86("smp", "--cpus", String(cpus));
      assertReboot(r);
      const lines = r.stdout.split("\n");
      assert.deepEqual(lines.slice(0, 2), ["BSP up", `cpus in MADT: ${cpus}`], describeRun(r));
      const aps = lines.slice(2, 2 + cpus - 1).sort();
      assert.deepEqual(
        aps,
        Array.from({ length: cpus - 1 }, (_, i) => `AP ${i + 1} online`),
        describeRun(r),
      );
      assert.deepEqual(lines.slice(cpus + 1), [`APs checked in: ${cpus - 1}`, ""], describeRun(r));
    });
  }

  test("triple fault: exit status 3 with a register dump", async () => {
    const r = await x86("triple-fault");
    assert.equal(r.status, 3, describeRun(r));
    assert.equal(r.stdout, "about to triple-fault\n");
    const err = stderrLines(r);
    assert.equal(err[0], "vireo: vCPU 0: KVM_EXIT_SHUTDOWN (triple fault)", describeRun(r));
    assert.match(r.stderr, /rbx=0x5afec0debadc0de5/);
    assert.match(r.stderr, /rip=0x0000000000100[0-9a-f]{3} /);
    assert.match(r.stderr, /rsp=0x0000000000008ff0/);
    assert.match(r.stderr, /cr0=0x0000000080000031 .* cr3=0x0000000000009000/);
    assert.match(r.stderr, /cr4=0x0000000000000020 +efer=0x0000000000000500/);
    assert.match(r.stderr, /^cs +sel=0x0010 base=0x0000000000000000 limit=0xffffffff type=11 .* l=1/m);
    assert.match(r.stderr, /idt=0x0000000000000000\/0x0000/);
  });

  test("poweroff through the FADT sleep register: status 0, no message", async () => {
    const r = await x86("poweroff");
    assert.equal(r.status, 0, describeRun(r));
    assert.equal(r.stdout, "powering off via port 960\n");
    assert.deepEqual(stderrLines(r), []);
  });

  test("port I/O: unclaimed ports are answered in the vCPU thread, device ports on the main thread", async () => {
    const dir = (guestImages() as { dir: string }).dir;
    const config = (port: number, input: boolean, count: number) => {
      const path = join(dir, `pio-${port}-${input}.bin`);
      const bytes = Buffer.alloc(8);
      bytes.writeUInt16LE(port, 0);
      bytes.writeUInt16LE(input ? 1 : 0, 2);
      bytes.writeUInt32LE(count, 4);
      writeFileSync(path, bytes);
      return path;
    };
    const count = 5000;
    const stat = (r: Run, name: string) =>
      Number(new RegExp(`^stats: ${name} (\\d+)$`, "m").exec(r.stderr)?.[1]);
    const local = await x86("pio-loop", "--initrd", config(0x80, false, count), "--stats");
    assert.equal(local.status, 0, describeRun(local));
    assert.equal(local.stdout, "pio done\n");
    assert.ok(stat(local, "exits-local-pio") >= count, describeRun(local));
    assert.ok(stat(local, "exits-forwarded") < 100, describeRun(local));
    const forwarded = await x86("pio-loop", "--initrd", config(0x3ff, false, count), "--stats");
    assert.equal(forwarded.stdout, "pio done\n");
    assert.ok(stat(forwarded, "exits-forwarded") >= count, describeRun(forwarded));
    const reads = await x86("pio-loop", "--initrd", config(0x3ff, true, count), "--stats");
    assert.equal(reads.stdout, "pio done\n");
    assert.ok(stat(reads, "exits-forwarded") >= count, describeRun(reads));
  });
});
