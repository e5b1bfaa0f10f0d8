import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BlockBackend, MemoryBlockBackend } from "../../../src/devices/virtio/blk/backend.js";
import {
  BLK_MAX_ZERO_SECTORS,
  BLK_SEG_MAX,
  BlkConfig,
  BlkFeature,
  BlkRequest,
  BlkStatus,
  VirtioBlk,
} from "../../../src/devices/virtio/blk/virtio-blk.js";
import { Feature } from "../../../src/devices/virtio/spec.js";
import { FileBlockBackend } from "../../../src/host/block-file.js";
import { after, describe, it } from "../../support/test.js";
import { type Buf, settle, TestDriver, TestMemory } from "./harness.js";

const BASE = 0x8000_0000;
const RAM = 4 << 20;
const DISK = 1 << 20;
const SECTORS = DISK / 512;
const HDR = BASE + 0x10_0000;
const DATA = BASE + 0x20_0000;
const STATUS = BASE + 0x30_0000;
const scratch = mkdtempSync(join(tmpdir(), "vireo-blk-"));

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
}

/** A started virtio-blk with every offered feature accepted. */
function make(backend: BlockBackend, options: { features?: number[]; serial?: string } = {}) {
  const mem = new TestMemory(BASE, RAM);
  const blk = new VirtioBlk(backend, { serial: options.serial ?? "vireo-test" });
  const drv = new TestDriver(mem, blk);
  drv.start(options.features ? { features: options.features } : {});
  return { mem, blk, drv };
}

/** Writes a request header at HDR (and `extra` readable bytes after it). */
function header(mem: TestMemory, type: number, sector: number): void {
  mem.set32(HDR, type);
  mem.set32(HDR + 4, 0);
  mem.set64(HDR + 8, sector);
}

/** Submits header + data + status the way Linux lays them out; returns the head. */
function request(
  d: ReturnType<typeof make>,
  type: number,
  sector: number,
  data: Buf[] = [],
  statusLen = 1,
): number {
  header(d.mem, type, sector);
  d.mem.write(STATUS, [0xff]);
  return d.drv.submit(0, [{ addr: HDR, len: 16 }, ...data, { addr: STATUS, len: statusLen, write: true }]);
}

function status(d: ReturnType<typeof make>): number {
  return d.mem.u8(STATUS);
}

function used(d: ReturnType<typeof make>): [number, number][] {
  return d.drv.rings[0]?.takeUsed() ?? [];
}

describe("virtio-blk: configuration", () => {
  it("offers SEG_MAX, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES; capacity and limits in config", () => {
    const { drv } = make(new MemoryBlockBackend(new Uint8Array(DISK + 100)));
    const bits = drv.offered();
    for (const b of [
      BlkFeature.SEG_MAX,
      BlkFeature.BLK_SIZE,
      BlkFeature.FLUSH,
      BlkFeature.DISCARD,
      BlkFeature.WRITE_ZEROES,
    ]) {
      assert.ok(bits.has(b), `feature ${b}`);
    }
    assert.ok(!bits.has(BlkFeature.RO));
    assert.ok(!bits.has(BlkFeature.MQ));
    assert.equal(drv.rd(0x008), 2);
    assert.equal(drv.config(BlkConfig.CAPACITY, 4), SECTORS, "a partial last sector is not visible");
    assert.equal(drv.config(BlkConfig.CAPACITY + 4, 4), 0);
    assert.equal(drv.config(BlkConfig.SEG_MAX, 4), BLK_SEG_MAX);
    assert.equal(drv.config(BlkConfig.BLK_SIZE, 4), 512);
    assert.equal(drv.config(BlkConfig.MAX_DISCARD_SECTORS, 4), BLK_MAX_ZERO_SECTORS);
    assert.ok(drv.config(BlkConfig.MAX_WRITE_ZEROES_SEG, 4) >= 1);
  });

  it("a read-only backend offers RO and neither DISCARD nor WRITE_ZEROES", () => {
    const { drv } = make(new MemoryBlockBackend(new Uint8Array(DISK), true));
    const bits = drv.offered();
    assert.ok(bits.has(BlkFeature.RO));
    assert.ok(!bits.has(BlkFeature.DISCARD));
    assert.ok(!bits.has(BlkFeature.WRITE_ZEROES));
  });

  it("rejects serials that are not at most 20 printable ASCII characters", () => {
    const disk = new MemoryBlockBackend(new Uint8Array(DISK));
    assert.throws(() => new VirtioBlk(disk, { serial: "x".repeat(21) }), RangeError);
    assert.throws(() => new VirtioBlk(disk, { serial: "tab\there" }), RangeError);
  });
});

describe("virtio-blk: requests on a memory disk", () => {
  it("reads and writes sectors, scattered over several buffers", () => {
    const disk = new Uint8Array(DISK);
    disk.set(pattern(2048, 3), 512 * 10);
    const d = make(new MemoryBlockBackend(disk));
    // IN: sectors 10..13 into two buffers, the second split at an odd place.
    const head = request(d, BlkRequest.IN, 10, [
      { addr: DATA, len: 1024, write: true },
      { addr: DATA + 0x1000, len: 1000, write: true },
      { addr: DATA + 0x2000, len: 24, write: true },
    ]);
    assert.equal(status(d), BlkStatus.OK);
    assert.deepEqual(used(d), [[head, 2049]]);
    const got = new Uint8Array([
      ...d.mem.read(DATA, 1024),
      ...d.mem.read(DATA + 0x1000, 1000),
      ...d.mem.read(DATA + 0x2000, 24),
    ]);
    assert.deepEqual(got, pattern(2048, 3));
    // OUT: two sectors from two buffers, data adjacent to the header in one descriptor.
    header(d.mem, BlkRequest.OUT, 100);
    d.mem.write(HDR + 16, pattern(1024, 5).subarray(0, 700));
    d.mem.write(DATA, pattern(1024, 5).subarray(700));
    d.drv.submit(0, [
      { addr: HDR, len: 16 + 700 },
      { addr: DATA, len: 324 },
      { addr: STATUS, len: 1, write: true },
    ]);
    assert.equal(status(d), BlkStatus.OK);
    assert.deepEqual(disk.subarray(512 * 100, 512 * 102), pattern(1024, 5));
    assert.equal(used(d)[0]?.[1], 1);
  });

  it("reads the last sector; ranges beyond the disk or partial sectors fail with IOERR", () => {
    const d = make(new MemoryBlockBackend(new Uint8Array(DISK)));
    request(d, BlkRequest.IN, SECTORS - 1, [{ addr: DATA, len: 512, write: true }]);
    assert.equal(status(d), BlkStatus.OK);
    for (const [sector, len] of [
      [SECTORS, 512],
      [SECTORS - 1, 1024],
      [2 ** 40, 512],
      [2 ** 63, 512],
      [0, 100],
    ] as const) {
      request(d, BlkRequest.IN, sector, [{ addr: DATA, len, write: true }]);
      assert.equal(status(d), BlkStatus.IOERR, `IN ${sector} +${len}`);
      request(d, BlkRequest.OUT, sector, [{ addr: DATA, len }]);
      assert.equal(status(d), BlkStatus.IOERR, `OUT ${sector} +${len}`);
    }
    assert.ok(d.mem.guardsIntact());
  });

  it("GET_ID returns the 20-byte serial, NUL-padded", () => {
    const d = make(new MemoryBlockBackend(new Uint8Array(DISK)), { serial: "disk-7" });
    d.mem.write(DATA, new Uint8Array(20).fill(0xee));
    const head = request(d, BlkRequest.GET_ID, 0, [{ addr: DATA, len: 20, write: true }]);
    assert.equal(status(d), BlkStatus.OK);
    assert.deepEqual(used(d), [[head, 21]]);
    const id = d.mem.read(DATA, 20);
    assert.equal(Buffer.from(id.subarray(0, 6)).toString(), "disk-7");
    assert.ok(id.subarray(6).every((b) => b === 0));
    request(d, BlkRequest.GET_ID, 0, [{ addr: DATA, len: 8, write: true }]);
    assert.equal(status(d), BlkStatus.IOERR, "too small a buffer");
  });

  it("FLUSH flushes; unknown and unsupported types get UNSUPP", () => {
    let flushes = 0;
    const backend = new MemoryBlockBackend(new Uint8Array(DISK));
    backend.flush = () => {
      flushes++;
    };
    const d = make(backend);
    request(d, BlkRequest.FLUSH, 0);
    assert.equal(status(d), BlkStatus.OK);
    assert.equal(flushes, 1);
    for (const type of [BlkRequest.GET_LIFETIME, BlkRequest.SECURE_ERASE, 2, 0xffff_ffff]) {
      request(d, type, 0, [{ addr: DATA, len: 512, write: true }]);
      assert.equal(status(d), BlkStatus.UNSUPP, `type ${type}`);
    }
  });

  it("DISCARD and WRITE_ZEROES zero their ranges; flags and ranges are checked", () => {
    const disk = new Uint8Array(DISK).fill(0x55);
    const d = make(new MemoryBlockBackend(disk));
    const ranges = (list: [number, number, number][]) => {
      list.forEach(([sector, count, flags], i) => {
        d.mem.set64(DATA + 16 * i, sector);
        d.mem.set32(DATA + 16 * i + 8, count);
        d.mem.set32(DATA + 16 * i + 12, flags);
      });
      return [{ addr: DATA, len: 16 * list.length }];
    };
    request(
      d,
      BlkRequest.WRITE_ZEROES,
      0,
      ranges([
        [4, 2, 1],
        [100, 1, 0],
      ]),
    );
    assert.equal(status(d), BlkStatus.OK);
    assert.ok(disk.subarray(512 * 4, 512 * 6).every((b) => b === 0));
    assert.ok(disk.subarray(512 * 100, 512 * 101).every((b) => b === 0));
    assert.equal(disk[512 * 6], 0x55);
    request(d, BlkRequest.DISCARD, 0, ranges([[10, 1, 0]]));
    assert.equal(status(d), BlkStatus.OK);
    assert.equal(disk[512 * 10], 0);
    const bad: [number, [number, number, number][], number][] = [
      [BlkRequest.DISCARD, [[10, 1, 1]], BlkStatus.UNSUPP], // unmap on discard
      [BlkRequest.WRITE_ZEROES, [[10, 1, 2]], BlkStatus.UNSUPP], // reserved flag
      [BlkRequest.WRITE_ZEROES, [[SECTORS - 1, 2, 0]], BlkStatus.IOERR],
      [BlkRequest.DISCARD, [[0, BLK_MAX_ZERO_SECTORS + 1, 0]], BlkStatus.IOERR],
      [
        BlkRequest.DISCARD,
        Array.from({ length: 9 }, () => [0, 1, 0] as [number, number, number]),
        BlkStatus.IOERR,
      ],
    ];
    disk.fill(0x55);
    for (const [type, list, want] of bad) {
      request(d, type, 0, ranges(list));
      assert.equal(status(d), want, JSON.stringify(list));
    }
    // Not whole segments.
    request(d, BlkRequest.DISCARD, 0, [{ addr: DATA, len: 20 }]);
    assert.equal(status(d), BlkStatus.IOERR);
    request(d, BlkRequest.DISCARD, 0, []);
    assert.equal(status(d), BlkStatus.IOERR);
    assert.ok(
      disk.every((b) => b === 0x55),
      "failed requests change nothing",
    );
  });

  it("a read-only disk refuses OUT, DISCARD and WRITE_ZEROES with IOERR but reads", () => {
    const disk = new Uint8Array(DISK).fill(7);
    const d = make(new MemoryBlockBackend(disk, true));
    request(d, BlkRequest.OUT, 0, [{ addr: DATA, len: 512 }]);
    assert.equal(status(d), BlkStatus.IOERR);
    request(d, BlkRequest.WRITE_ZEROES, 0, [{ addr: DATA, len: 16 }]);
    assert.equal(status(d), BlkStatus.IOERR);
    request(d, BlkRequest.IN, 0, [{ addr: DATA, len: 512, write: true }]);
    assert.equal(status(d), BlkStatus.OK);
    assert.ok(disk.every((b) => b === 7));
  });

  it("fails requests with bad buffers through the status byte; stops the queue without one", () => {
    const d = make(new MemoryBlockBackend(new Uint8Array(DISK)));
    request(d, BlkRequest.IN, 0, [{ addr: BASE + RAM - 256, len: 512, write: true }]);
    assert.equal(status(d), BlkStatus.IOERR, "data buffer past RAM");
    header(d.mem, BlkRequest.IN, 0);
    d.mem.write(STATUS, [0xff]);
    d.drv.submit(0, [
      { addr: STATUS, len: 1, write: true },
      { addr: HDR, len: 16 },
      { addr: STATUS, len: 1, write: true },
    ]);
    assert.equal(status(d), BlkStatus.IOERR, "readable after writable");
    request(d, BlkRequest.IN, 0, [], 0);
    assert.ok(d.drv.needsReset(), "no status byte at all");
    assert.match(d.drv.mmio.lastFault ?? "", /status byte/);
    assert.ok(d.mem.guardsIntact());
  });

  it("a failing backend write is reported as IOERR, never dropped", () => {
    const backend = new MemoryBlockBackend(new Uint8Array(DISK));
    backend.write = () => {
      throw new Error("EIO");
    };
    const d = make(backend);
    request(d, BlkRequest.OUT, 0, [{ addr: DATA, len: 512 }]);
    assert.equal(status(d), BlkStatus.IOERR);
    backend.read = () => {
      throw new Error("EIO");
    };
    request(d, BlkRequest.IN, 0, [{ addr: DATA, len: 512, write: true }]);
    assert.equal(status(d), BlkStatus.IOERR);
  });

  it("without negotiated FLUSH, every write is flushed before it completes (write-through)", () => {
    let flushes = 0;
    const backend = new MemoryBlockBackend(new Uint8Array(DISK));
    backend.flush = () => {
      flushes++;
    };
    const d = make(backend, { features: [Feature.VERSION_1] });
    request(d, BlkRequest.OUT, 0, [{ addr: DATA, len: 512 }]);
    assert.equal(status(d), BlkStatus.OK);
    assert.equal(flushes, 1);
  });
});

/** A backend whose operations finish when the test says so, in any order. */
class ManualBackend implements BlockBackend {
  readonly sizeBytes = DISK;
  readonly readOnly = false;
  readonly disk = new Uint8Array(DISK);
  readonly ops: { what: string; finish: (ok: boolean) => void }[] = [];

  private later(what: string, action: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ops.push({
        what,
        finish: (ok) => {
          if (!ok) return reject(new Error("EIO"));
          action();
          resolve();
        },
      });
    });
  }
  read(offset: number, dst: Uint8Array): Promise<void> {
    return this.later(`read ${offset}`, () => dst.set(this.disk.subarray(offset, offset + dst.length)));
  }
  write(offset: number, src: Uint8Array): Promise<void> {
    const copy = src.slice();
    return this.later(`write ${offset}`, () => this.disk.set(copy, offset));
  }
  flush(): Promise<void> {
    return this.later("flush", () => {});
  }
  take(what: string) {
    const i = this.ops.findIndex((o) => o.what === what);
    assert.ok(i >= 0, `no pending ${what} in ${this.ops.map((o) => o.what)}`);
    return this.ops.splice(i, 1)[0] as { finish: (ok: boolean) => void };
  }
}

describe("virtio-blk: asynchronous backends", () => {
  it("completes requests out of order on the backend's callbacks, with interrupts", async () => {
    const backend = new ManualBackend();
    backend.disk.set(pattern(512, 1), 0);
    backend.disk.set(pattern(512, 2), 512);
    const d = make(backend);
    const ring = d.drv.rings[0];
    assert.ok(ring);
    header(d.mem, BlkRequest.IN, 0);
    d.mem.set32(HDR + 0x100, BlkRequest.IN);
    d.mem.set64(HDR + 0x108, 1);
    const a = ring.chain([
      { addr: HDR, len: 16 },
      { addr: DATA, len: 512, write: true },
      { addr: STATUS, len: 1, write: true },
    ]);
    const b = ring.chain([
      { addr: HDR + 0x100, len: 16 },
      { addr: DATA + 0x1000, len: 512, write: true },
      { addr: STATUS + 1, len: 1, write: true },
    ]);
    ring.publish(a);
    ring.publish(b);
    d.drv.wr(0x050, 0);
    assert.equal(ring.usedIdx(), 0, "nothing completes before the backend does");
    assert.equal(d.drv.line.level, false);
    backend.take("read 512").finish(true);
    await settle();
    assert.deepEqual(ring.takeUsed(), [[b, 513]]);
    assert.equal(d.drv.line.level, true);
    assert.deepEqual(d.mem.read(DATA + 0x1000, 512), pattern(512, 2));
    d.drv.ack();
    backend.take("read 0").finish(false);
    await settle();
    assert.deepEqual(ring.takeUsed(), [[a, 1]]);
    assert.equal(d.mem.u8(STATUS), BlkStatus.IOERR);
    assert.equal(d.drv.line.level, true);
  });

  it("FLUSH waits for the writes issued before it", async () => {
    const backend = new ManualBackend();
    const d = make(backend);
    request(d, BlkRequest.OUT, 0, [{ addr: DATA, len: 512 }]);
    const ring = d.drv.rings[0];
    header(d.mem, BlkRequest.FLUSH, 0);
    d.drv.submit(0, [
      { addr: HDR, len: 16 },
      { addr: STATUS + 8, len: 1, write: true },
    ]);
    await settle();
    assert.deepEqual(
      backend.ops.map((o) => o.what),
      ["write 0"],
      "no flush while the write runs",
    );
    backend.take("write 0").finish(true);
    await settle();
    await settle();
    assert.deepEqual(
      backend.ops.map((o) => o.what),
      ["flush"],
    );
    assert.equal(ring?.takeUsed().length, 1, "the write completed");
    backend.take("flush").finish(true);
    await settle();
    assert.equal(ring?.takeUsed().length, 1, "then the flush");
    assert.equal(d.mem.u8(STATUS + 8), BlkStatus.OK);
  });

  it("a device reset drops completions that arrive afterwards", async () => {
    const backend = new ManualBackend();
    const d = make(backend);
    request(d, BlkRequest.IN, 0, [{ addr: DATA, len: 512, write: true }]);
    d.drv.wr(0x070, 0);
    d.mem.write(STATUS, [0xab]);
    backend.take("read 0").finish(true);
    await settle();
    assert.equal(d.mem.u8(STATUS), 0xab, "no status written after the reset");
    assert.equal(d.drv.line.level, false);
    assert.ok(d.mem.guardsIntact());
  });

  it("re-issues in-flight requests after a restore", async () => {
    const backend = new ManualBackend();
    backend.disk.set(pattern(512, 4), 512 * 3);
    const d = make(backend);
    request(d, BlkRequest.IN, 3, [{ addr: DATA, len: 512, write: true }]);
    const state = JSON.parse(JSON.stringify(d.drv.mmio.snapshot()));
    const blk2 = new VirtioBlk(backend, { serial: "vireo-test" });
    const drv2 = new TestDriver(d.mem, blk2);
    drv2.mmio.restore(state);
    assert.equal(backend.ops.filter((o) => o.what === "read 1536").length, 2, "issued again");
    backend.ops.splice(0).forEach((o) => {
      o.finish(true);
    });
    await settle();
    assert.equal(d.mem.u8(STATUS), BlkStatus.OK);
    assert.deepEqual(d.mem.read(DATA, 512), pattern(512, 4));
    assert.equal(drv2.mmio.queue(0).inFlight, 0);
  });
});

describe("virtio-blk: a raw image file", () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  async function fileDisk(readOnly = false, size = DISK) {
    const path = join(scratch, `disk-${Math.random().toString(36).slice(2)}.img`);
    writeFileSync(path, new Uint8Array(size));
    const backend = await FileBlockBackend.open(path, { readOnly });
    return { path, backend };
  }

  async function until(d: ReturnType<typeof make>, n: number): Promise<[number, number][]> {
    // Real file I/O runs on libuv's thread pool: poll for up to 10 s.
    const got: [number, number][] = [];
    const deadline = Date.now() + 10_000;
    while (got.length < n && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      got.push(...used(d));
    }
    return got;
  }

  it("reads, writes, flushes, zeroes and identifies through the file", async () => {
    const { path, backend } = await fileDisk();
    const fd = openSync(path, "r+");
    writeSync(fd, pattern(1024, 8), 0, 1024, 512 * 20);
    closeSync(fd);
    const d = make(backend, { serial: "file-disk" });
    request(d, BlkRequest.IN, 20, [{ addr: DATA, len: 1024, write: true }]);
    assert.equal((await until(d, 1)).length, 1);
    assert.equal(status(d), BlkStatus.OK);
    assert.deepEqual(d.mem.read(DATA, 1024), pattern(1024, 8));
    d.mem.write(DATA, pattern(512, 6));
    request(d, BlkRequest.OUT, 7, [{ addr: DATA, len: 512 }]);
    assert.equal((await until(d, 1)).length, 1);
    request(d, BlkRequest.FLUSH, 0);
    assert.equal((await until(d, 1)).length, 1);
    assert.equal(status(d), BlkStatus.OK);
    assert.deepEqual(readFileSync(path).subarray(512 * 7, 512 * 8), Buffer.from(pattern(512, 6)));
    d.mem.set64(DATA, 20);
    d.mem.set32(DATA + 8, 1);
    d.mem.set32(DATA + 12, 0);
    request(d, BlkRequest.WRITE_ZEROES, 0, [{ addr: DATA, len: 16 }]);
    assert.equal((await until(d, 1)).length, 1);
    assert.equal(status(d), BlkStatus.OK);
    const image = readFileSync(path);
    assert.ok(image.subarray(512 * 20, 512 * 21).every((b) => b === 0));
    assert.deepEqual(image.subarray(512 * 21, 512 * 22), Buffer.from(pattern(1024, 8).subarray(512)));
    request(d, BlkRequest.GET_ID, 0, [{ addr: DATA, len: 20, write: true }]);
    assert.equal(Buffer.from(d.mem.read(DATA, 9)).toString(), "file-disk");
    await backend.close();
  });

  it("a read-only file is opened O_RDONLY and never written", async () => {
    const { path, backend } = await fileDisk(true);
    const d = make(backend);
    assert.ok(d.drv.offered().has(BlkFeature.RO));
    request(d, BlkRequest.OUT, 0, [{ addr: DATA, len: 512 }]);
    assert.equal(status(d), BlkStatus.IOERR);
    await assert.rejects(backend.write(0, new Uint8Array(512)));
    assert.ok(readFileSync(path).every((b) => b === 0));
    await backend.close();
  });

  it("a write the host cannot do is IOERR to the guest", async () => {
    const { backend } = await fileDisk();
    const d = make(backend);
    await backend.close(); // every later I/O fails with EBADF
    d.mem.write(STATUS, [0xff]);
    request(d, BlkRequest.OUT, 0, [{ addr: DATA, len: 512 }]);
    assert.equal((await until(d, 1)).length, 1);
    assert.equal(status(d), BlkStatus.IOERR);
    request(d, BlkRequest.FLUSH, 0);
    assert.equal((await until(d, 1)).length, 1);
    assert.equal(status(d), BlkStatus.IOERR);
  });

  it("opening a missing file fails with its errno", async () => {
    await assert.rejects(FileBlockBackend.open(join(scratch, "missing.img")), /ENOENT/);
    await assert.rejects(FileBlockBackend.open(scratch, { readOnly: true }), /not a regular file/);
  });
});
