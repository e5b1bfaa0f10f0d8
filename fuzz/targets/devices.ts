/** Models of the six virtio devices for the ring fuzzer (rings.ts): their valid requests and host side. */
import fc from "fast-check";
import { BALLOON_PAGE, type PageReclaimer } from "../../src/devices/virtio/balloon/reclaimer.js";
import { BalloonFeature, VirtioBalloon } from "../../src/devices/virtio/balloon/virtio-balloon.js";
import { MemoryBlockBackend } from "../../src/devices/virtio/blk/backend.js";
import { BlkRequest, VirtioBlk } from "../../src/devices/virtio/blk/virtio-blk.js";
import { VirtioConsole } from "../../src/devices/virtio/console/virtio-console.js";
import { RecordingNetBackend } from "../../src/devices/virtio/net/backend.js";
import { MAX_FRAME, NET_HDR_SIZE, VirtioNet } from "../../src/devices/virtio/net/virtio-net.js";
import { VirtioRng } from "../../src/devices/virtio/rng/virtio-rng.js";
import type { VsockStream } from "../../src/devices/virtio/vsock/backend.js";
import { Op, VSOCK_HDR_SIZE } from "../../src/devices/virtio/vsock/protocol.js";
import { VirtioVsock } from "../../src/devices/virtio/vsock/virtio-vsock.js";
import {
  encodeHeader,
  GUEST_CID,
  RecordingHandler,
  TestBackend,
} from "../../test/devices/virtio/vsock-harness.js";
import { invariant } from "../target.js";
import { BASE, type DeviceModel, RAM, type Req, type Seg } from "./rings.js";

const DISK = 64 * 1024;
const u32le = (...words: number[]): Uint8Array => new Uint8Array(Uint32Array.from(words).buffer);
const readable = (data: Uint8Array): Seg => ({ write: false, len: data.length, data });
const writable = (len: number): Seg => ({ write: true, len });

/** Splits `total` bytes into `pieces` buffers of one direction. */
function pieces(total: number, n: number, write: boolean, data?: Uint8Array): Seg[] {
  const out: Seg[] = [];
  const piece = Math.max(1, Math.ceil(total / n));
  for (let off = 0; off < total; off += piece) {
    const len = Math.min(piece, total - off);
    out.push(write ? writable(len) : readable(data?.subarray(off, off + len) ?? new Uint8Array(len)));
  }
  return out;
}

export const blkModel: DeviceModel = {
  make(variant) {
    const backend = new MemoryBlockBackend(new Uint8Array(DISK), (variant & 3) === 0);
    return { device: new VirtioBlk(backend, { serial: "fuzz" }), host() {}, check() {} };
  },
  request: fc
    .record({
      type: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(BlkRequest.IN, BlkRequest.OUT) },
        { weight: 3, arbitrary: fc.constantFrom(...Object.values(BlkRequest)) },
        fc.nat(),
      ),
      sector: fc.oneof(
        { weight: 6, arbitrary: fc.nat(DISK / 512 - 1) },
        fc.constantFrom(DISK / 512, 2 ** 53 - 1),
      ),
      sectors: fc.integer({ min: 0, max: 8 }),
      split: fc.integer({ min: 1, max: 4 }),
      zeroes: fc.array(fc.record({ sector: fc.nat(DISK / 512), n: fc.nat(200), flags: fc.nat(3) }), {
        minLength: 1,
        maxLength: 3,
      }),
    })
    .map(({ type, sector, sectors, split, zeroes }): Req => {
      const hdr = new Uint8Array(16);
      const v = new DataView(hdr.buffer);
      v.setUint32(0, type, true);
      v.setBigUint64(8, BigInt(sector), true);
      const segs: Seg[] = [readable(hdr)];
      if (type === BlkRequest.IN) segs.push(...pieces(512 * sectors, split, true));
      else if (type === BlkRequest.GET_ID) segs.push(writable(20));
      else if (type === BlkRequest.WRITE_ZEROES || type === BlkRequest.DISCARD) {
        const body = new Uint8Array(16 * zeroes.length);
        const b = new DataView(body.buffer);
        zeroes.forEach((z, i) => {
          b.setBigUint64(16 * i, BigInt(z.sector), true);
          b.setUint32(16 * i + 8, z.n, true);
          b.setUint32(16 * i + 12, z.flags, true);
        });
        segs.push(readable(body));
      } else if (type !== BlkRequest.FLUSH) {
        const data = Uint8Array.from({ length: 512 * sectors }, (_, i) => i * 7);
        segs.push(...pieces(data.length, split, false, data));
      }
      segs.push(writable(1));
      return { queue: 0, segs };
    }),
};

export const rngModel: DeviceModel = {
  make() {
    let n = 0;
    return { device: new VirtioRng({ fill: (d) => d.fill(n++ & 0xff) }), host() {}, check() {} };
  },
  request: fc
    .tuple(
      fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 0x2_0000 })),
      fc.integer({ min: 1, max: 3 }),
    )
    .map(([len, n]): Req => ({ queue: 0, segs: pieces(len, n, true) })),
};

export const consoleModel: DeviceModel = {
  make() {
    let written = 0;
    const device = new VirtioConsole({ write: () => written++ });
    return {
      device,
      host: (_event, bytes) => device.receive(bytes.subarray(0, 4096)),
      check: () => invariant(written >= 0, "console output"),
    };
  },
  request: fc.oneof(
    fc.tuple(fc.integer({ min: 1, max: 512 }), fc.integer({ min: 1, max: 3 })).map(
      ([len, n]): Req => ({
        queue: 0,
        segs: pieces(len, n, true),
      }),
    ),
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 256 }), fc.integer({ min: 1, max: 3 }))
      .map(([data, n]): Req => ({ queue: 1, segs: pieces(data.length, n, false, data) })),
  ),
};

const MAC = [0x52, 0x54, 0x00, 0x76, 0x00, 0x01];

export const netModel: DeviceModel = {
  make(variant) {
    const backend = new RecordingNetBackend();
    const net = new VirtioNet(backend, { mac: MAC, rxBacklog: 1 + (variant % 8) });
    return {
      device: net,
      host(event, bytes) {
        if (event === 15) net.setLinkUp(!net.linkUp);
        else backend.inject(event === 14 ? new Uint8Array(MAX_FRAME + (bytes.length & 1)) : bytes);
      },
      check() {
        for (const f of backend.sent) invariant(f.length <= MAX_FRAME, `frame of ${f.length} bytes sent`);
        backend.sent.length = 0;
      },
    };
  },
  request: fc.oneof(
    // Receive buffers, as Linux posts them (header and frame in one, or split).
    fc
      .tuple(fc.constantFrom(NET_HDR_SIZE + 1514, 1526, 4096, 65562), fc.integer({ min: 1, max: 3 }))
      .map(([len, n]): Req => ({ queue: 0, segs: pieces(len, n, true) })),
    // A frame to send: virtio-net header (gso fields sometimes set) and an Ethernet frame.
    fc
      .record({
        flags: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat(255)),
        gso: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.nat(255)),
        frame: fc.oneof(fc.uint8Array({ minLength: 14, maxLength: 200 }), fc.uint8Array({ maxLength: 14 })),
        n: fc.integer({ min: 1, max: 3 }),
      })
      .map(({ flags, gso, frame, n }): Req => {
        const data = new Uint8Array(NET_HDR_SIZE + frame.length);
        data[0] = flags;
        data[1] = gso;
        data.set(frame, NET_HDR_SIZE);
        return { queue: 1, segs: pieces(data.length, n, false, data) };
      }),
  ),
};

/** Records what the balloon gives back; each range must be whole pages inside guest RAM. */
class CheckingReclaimer implements PageReclaimer {
  readonly kind = "fuzz";
  reclaim(offset: number, length: number): number {
    invariant(
      offset % BALLOON_PAGE === 0 && length % BALLOON_PAGE === 0,
      `reclaim ${offset}+${length}: not pages`,
    );
    invariant(
      length > 0 && offset >= 0 && offset + length <= RAM,
      `reclaim ${offset}+${length}: outside RAM`,
    );
    return length;
  }
}

export const balloonModel: DeviceModel = {
  make() {
    const balloon = new VirtioBalloon(new CheckingReclaimer());
    return {
      device: balloon,
      host: (event, bytes) => balloon.setTarget((((bytes[0] ?? 0) << 4) | event) % (RAM / BALLOON_PAGE + 1)),
      check() {},
    };
  },
  extraFeatures: [BalloonFeature.STATS_VQ],
  request: fc.oneof(
    // PFN arrays: pages of guest RAM mostly, some outside it; odd lengths sometimes.
    fc
      .record({
        queue: fc.constantFrom(0, 1),
        pfns: fc.array(
          fc.oneof(
            { weight: 6, arbitrary: fc.nat(RAM / BALLOON_PAGE - 1).map((p) => BASE / BALLOON_PAGE + p) },
            fc.nat(),
          ),
          { maxLength: 40 },
        ),
        odd: fc.nat(3),
      })
      .map(({ queue, pfns, odd }): Req => {
        const data = u32le(...pfns);
        return { queue, segs: [readable(data.subarray(0, Math.max(0, data.length - odd)))] };
      }),
    // Statistics: tag/value pairs (10 bytes each).
    fc.array(fc.tuple(fc.nat(20), fc.nat()), { maxLength: 12 }).map((stats): Req => {
      const data = new Uint8Array(10 * stats.length);
      const v = new DataView(data.buffer);
      stats.forEach(([tag, value], i) => {
        v.setUint16(10 * i, tag, true);
        v.setBigUint64(10 * i + 2, BigInt(value), true);
      });
      return { queue: 2, segs: [readable(data)] };
    }),
  ),
};

export const vsockModel: DeviceModel = {
  make(variant) {
    const backend = new TestBackend();
    backend.policy = (["accept", "reject", "hold"] as const)[variant % 3] ?? "accept";
    const dev = new VirtioVsock({ guestCid: GUEST_CID, backend, maxConnections: 4, bufferSize: 8192 });
    const streams: VsockStream[] = backend.streams;
    return {
      device: dev,
      host(event, bytes) {
        const s = streams[(bytes[0] ?? 0) % Math.max(1, streams.length)];
        switch (event) {
          case 0:
          case 1:
            dev.connect((bytes[1] ?? 0) % 4, new RecordingHandler());
            break;
          case 2:
          case 3:
            s?.write(bytes, 0, bytes.length);
            break;
          case 4:
            s?.consumed(bytes.length);
            break;
          case 5:
            s?.end();
            break;
          case 6:
            s?.close();
            break;
          case 7:
            s?.reset();
            break;
          case 8:
            if (s) backend.accept(s);
            break;
          case 9:
            s?.reject();
            break;
        }
      },
      check() {},
    };
  },
  request: fc.oneof(
    fc
      .integer({ min: 1, max: 3 })
      .map((n): Req => ({ queue: 0, segs: pieces(4096 + VSOCK_HDR_SIZE, n, true) })),
    fc.nat(1).map((): Req => ({ queue: 2, segs: [writable(8)] })),
    fc
      .record({
        op: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: Op.REQUEST, max: Op.CREDIT_REQUEST }) },
          fc.nat(0xffff),
        ),
        srcPort: fc.nat(3),
        dstPort: fc.nat(3),
        flags: fc.oneof(fc.nat(3), fc.nat()),
        bufAlloc: fc.oneof(fc.constantFrom(0, 4096, 0xffff_ffff), fc.nat()),
        fwdCnt: fc.nat(),
        payload: fc.uint8Array({ maxLength: 200 }),
        lie: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.integer({ min: -300, max: 70_000 })),
        n: fc.integer({ min: 1, max: 3 }),
      })
      .map((p): Req => {
        const hdr = encodeHeader({
          op: p.op,
          srcPort: p.srcPort,
          dstPort: p.dstPort,
          flags: p.flags,
          bufAlloc: p.bufAlloc,
          fwdCnt: p.fwdCnt,
          type: 1,
          len: Math.max(0, p.payload.length + p.lie) >>> 0,
        });
        const data = new Uint8Array(VSOCK_HDR_SIZE + p.payload.length);
        data.set(hdr);
        data.set(p.payload, VSOCK_HDR_SIZE);
        return { queue: 1, segs: pieces(data.length, p.n, false, data) };
      }),
  ),
};
