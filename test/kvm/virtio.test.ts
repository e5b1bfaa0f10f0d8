/**
 * virtio-mmio on the x86 microVM under KVM, driven by our own guest (test/guest-x86/virtio.S): it finds
 * the devices at the board's fixed windows, negotiates VERSION_1, sets up a split virtqueue, rings the
 * QueueNotify doorbell and waits for the interrupt through the IOAPIC. The output is checked exactly,
 * and the board's counters (--stats) show that the doorbell never left the kernel as an MMIO exit (it
 * came through the ioeventfd) and that the interrupt was raised through the irqfd.
 * Skipped, with the reason printed, where /dev/kvm cannot be opened or binutils are missing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "../support/test.js";
import { describeRun, guest, guestImages, kvmUnavailable, type Run, vireo } from "./support.js";

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (why !== undefined) console.log(`# skipping KVM virtio tests: ${why}`);

const scratch = mkdtempSync(join(tmpdir(), "vireo-kvm-virtio-"));
const SECTOR0 = "Vireo virtio-blk on KVM: sector 0";

/** A 4 KiB disk image whose sector 0 starts with a known line. */
function diskImage(name: string): string {
  const path = join(scratch, name);
  const bytes = Buffer.alloc(4096, 0x5a);
  bytes.write(`${SECTOR0}\n`, 0, "latin1");
  writeFileSync(path, bytes);
  return path;
}

interface SlotStats {
  device: string;
  gsi: number;
  mmioExits: number;
  notifyExits: number;
  ioeventfd: number;
  irqfd: number;
  resamples: number;
}

function slotStats(r: Run): Map<number, SlotStats> {
  const out = new Map<number, SlotStats>();
  const re =
    /^stats: virtio(\d+) (\S+) gsi=(\d+) mmio-exits=(\d+) notify-exits=(\d+) notify-ioeventfd=(\d+) irqfd=(\d+) resamples=(\d+)$/gm;
  for (const m of r.stderr.matchAll(re)) {
    const [, slot, device, ...n] = m;
    const [gsi, mmioExits, notifyExits, ioeventfd, irqfd, resamples] = n.map(Number) as number[];
    out.set(Number(slot), {
      device: device as string,
      gsi: gsi as number,
      mmioExits: mmioExits as number,
      notifyExits: notifyExits as number,
      ioeventfd: ioeventfd as number,
      irqfd: irqfd as number,
      resamples: resamples as number,
    });
  }
  return out;
}

const stat = (r: Run, name: string) => new RegExp(`^stats: ${name} (\\S+)$`, "m").exec(r.stderr)?.[1];

const run = (...args: string[]) =>
  vireo(["run", "--arch", "x86_64", "--kernel", guest("virtio"), "--stats", ...args]);

function assertDoorbellsAndInterrupts(r: Run, slots: number[]): void {
  const stats = slotStats(r);
  const irqfd = stat(r, "virtio-interrupts") === "irqfd-resample";
  if (!irqfd)
    console.log("# this host's KVM lacks KVM_CAP_IRQFD_RESAMPLE: interrupts went through KVM_IRQ_LINE");
  for (const slot of slots) {
    const s = stats.get(slot);
    assert.ok(s, `stats for virtio${slot}\n${describeRun(r)}`);
    // The guest rang the doorbell once: it arrived through the ioeventfd, never as an MMIO exit.
    assert.equal(s.notifyExits, 0, describeRun(r));
    assert.equal(s.ioeventfd, 1, describeRun(r));
    if (irqfd) {
      assert.ok(s.irqfd >= 1, describeRun(r));
      assert.ok(s.resamples >= 1, describeRun(r));
    }
  }
  // Every MMIO exit is accounted for: the transports' register accesses, plus one MagicValue read per
  // empty slot of the guest's scan (the IOAPIC and LAPIC are in the kernel).
  const windows = [...stats.values()].reduce((n, s) => n + s.mmioExits, 0);
  assert.equal(Number(stat(r, "exits-mmio")), windows + (8 - stats.size), describeRun(r));
}

describe("virtio-mmio on the x86 microVM (KVM)", { skip: why }, () => {
  test("virtio-blk reads sector 0 and virtio-rng fills a buffer: ioeventfd doorbells, irqfd interrupts", async () => {
    const r = await run("--drive", `file=${diskImage("blk-rng.img")}`, "--rng");
    assert.equal(r.status, 0, describeRun(r));
    assert.equal(
      r.stdout,
      [
        "virtio-blk slot 0: irqs 1 isr 1 used 1 id 0 len 513 status 0",
        `sector 0: ${SECTOR0}`,
        "virtio-rng slot 1: irqs 1 isr 1 used 1 id 0 len 32 random 1",
        "virtio done",
        "",
      ].join("\n"),
    );
    const stats = slotStats(r);
    assert.deepEqual(
      [...stats].map(([slot, s]) => [slot, s.device, s.gsi]),
      [
        [0, "virtio-blk", 5],
        [1, "virtio-rng", 6],
      ],
    );
    assertDoorbellsAndInterrupts(r, [0, 1]);
    assert.match(r.stderr, /^vireo: the guest asked for a reboot; stopping$/m);
  });

  test("every device kind attaches, in the CLI's order, each on its own window and GSI", async () => {
    const r = await run(
      "--drive",
      `file=${diskImage("all.img")},readonly=on`,
      "--rng",
      "--virtio-console",
      "--balloon",
      "--net",
      "switch",
    );
    assert.equal(r.status, 0, describeRun(r));
    assert.equal(
      r.stdout,
      [
        "virtio-blk slot 0: irqs 1 isr 1 used 1 id 0 len 513 status 0",
        `sector 0: ${SECTOR0}`,
        "virtio-rng slot 1: irqs 1 isr 1 used 1 id 0 len 32 random 1",
        "virtio done",
        "",
      ].join("\n"),
    );
    assert.deepEqual(
      [...slotStats(r)].map(([slot, s]) => [slot, s.device, s.gsi]),
      [
        [0, "virtio-blk", 5],
        [1, "virtio-rng", 6],
        [2, "virtio-console", 7],
        [3, "virtio-balloon", 8],
        [4, "virtio-net", 9],
      ],
    );
    assertDoorbellsAndInterrupts(r, [0, 1]);
    assert.match(r.stderr, /^stats: net0 mac=52:54:00:76:00:00 /m);
  });

  test("virtio-vsock attaches on the x86 board too (its own window and GSI; the guest CID in stats)", async () => {
    const r = await run("--rng", "--vsock", "cid=7");
    assert.equal(r.status, 0, describeRun(r));
    assert.deepEqual(
      [...slotStats(r)].map(([slot, s]) => [slot, s.device, s.gsi]),
      [
        [0, "virtio-rng", 5],
        [1, "virtio-vsock", 6],
      ],
    );
    assert.match(r.stdout, /^virtio-rng slot 0: irqs 1 isr 1 used 1 id 0 len 32 random 1$/m);
    assert.match(r.stderr, /^stats: vsock cid=7 /m);
  });

  test("the devices are appended to the kernel command line as virtio_mmio.device=", async () => {
    const r = await vireo([
      "run",
      "--arch",
      "x86_64",
      "--kernel",
      guest("hello"),
      "--append",
      "console=ttyS0",
      "--rng",
      "--drive",
      `file=${diskImage("cmdline.img")}`,
    ]);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(
      r.stdout,
      /^cmdline: console=ttyS0 virtio_mmio\.device=4K@0xc0001000:5 virtio_mmio\.device=4K@0xc0002000:6$/m,
    );
  });
});

describe("vireo run --arch x86_64: virtio input errors", () => {
  const x86 = (...args: string[]) => vireo(["run", "--arch", "x86_64", "--kernel", "/nonexistent", ...args]);

  function assertUserError(r: Run, pattern: RegExp): void {
    assert.equal(r.status, 2, describeRun(r));
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, describeRun(r));
  }

  test("more devices than the eight slots", async () => {
    const drives = Array.from({ length: 8 }, (_, i) => ["--drive", `file=d${i}.img`]).flat();
    assertUserError(await x86(...drives, "--rng"), /too many virtio devices: the board has 8 slots/);
  });

  test("a bad --drive and --net are refused as on riscv64", async () => {
    assertUserError(await x86("--drive", "file=a.img,cache=none"), /unknown option 'cache'/);
    assertUserError(await x86("--net", "bridge"), /expected switch\[:NAME\] or tap:IFNAME/);
    assertUserError(await x86("--balloon-target", "1G", "--memory", "512M"), /smaller than --memory/);
  });
});
