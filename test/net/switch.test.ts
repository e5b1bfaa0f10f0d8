import assert from "node:assert/strict";
import fc from "fast-check";
import { defaultMac, formatMac, isUnicastMac, parseMac } from "../../src/net/mac.js";
import { type SwitchPort, SwitchRegistry, VirtualSwitch } from "../../src/net/switch.js";
import { describe, it } from "../support/test.js";

const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const mac = (n: number) => [0x52, 0x54, 0x00, 0, 0, n];

function frame(dst: number[], src: number[], length = 60, tag = 0): Uint8Array {
  const f = new Uint8Array(Math.max(length, 15));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x08;
  f[14] = tag;
  return f.subarray(0, length);
}

/** A switch with `n` ports, each recording what it receives (copied), and a clock the test moves. */
function rig(n: number, options: { agingMs?: number; maxAddresses?: number } = {}) {
  const clock = { t: 0 };
  const sw = new VirtualSwitch("test", { ...options, now: () => clock.t });
  const ports: SwitchPort[] = [];
  const got: Uint8Array[][] = [];
  for (let i = 0; i < n; i++) {
    const port = sw.connect(`p${i}`);
    const inbox: Uint8Array[] = [];
    port.onReceive((f) => inbox.push(f.slice()));
    ports.push(port);
    got.push(inbox);
  }
  /** Tags of what each port received since the last call. */
  const take = () => got.map((inbox) => inbox.splice(0).map((f) => f[14] as number));
  return { sw, ports, got, clock, take };
}

describe("virtual switch", () => {
  it("floods broadcast and unknown unicast to every port but the ingress one", () => {
    const r = rig(3);
    r.ports[0]?.send(frame(BROADCAST, mac(0), 60, 1));
    assert.deepEqual(r.take(), [[], [1], [1]]);
    r.ports[1]?.send(frame(mac(9), mac(1), 60, 2));
    assert.deepEqual(r.take(), [[2], [], [2]]);
    // Multicast (group bit) is flooded even to a "learned" group address.
    r.ports[2]?.send(frame([0x01, 0x00, 0x5e, 0, 0, 1], mac(2), 60, 3));
    assert.deepEqual(r.take(), [[3], [3], []]);
    assert.equal(r.sw.counters.flooded, 3);
  });

  it("learns source addresses and then forwards unicast to one port only", () => {
    const r = rig(3);
    r.ports[0]?.send(frame(BROADCAST, mac(0), 60, 1));
    r.ports[1]?.send(frame(mac(0), mac(1), 60, 2));
    assert.deepEqual(r.take(), [[2], [1], [1]]);
    r.ports[0]?.send(frame(mac(1), mac(0), 60, 3));
    assert.deepEqual(r.take(), [[], [3], []]);
    assert.equal(r.sw.lookup(mac(0)), r.ports[0]);
    assert.equal(r.sw.lookup(mac(1)), r.ports[1]);
    assert.equal(r.sw.lookup(mac(2)), null);
    assert.equal(r.sw.learned, 2);
    assert.equal(r.sw.counters.unicast, 2);
  });

  it("never sends a frame back out of its ingress port (hairpin), even to a known address there", () => {
    const r = rig(2);
    r.ports[0]?.send(frame(BROADCAST, mac(0), 60, 1));
    r.ports[0]?.send(frame(BROADCAST, mac(5), 60, 1));
    r.take();
    r.ports[0]?.send(frame(mac(5), mac(0), 60, 2));
    assert.deepEqual(r.take(), [[], []]);
    assert.equal(r.sw.counters.filtered, 1);
  });

  it("moves a station that shows up on another port", () => {
    const r = rig(3);
    r.ports[0]?.send(frame(BROADCAST, mac(7), 60, 1));
    r.ports[2]?.send(frame(BROADCAST, mac(7), 60, 2));
    r.take();
    r.ports[1]?.send(frame(mac(7), mac(1), 60, 3));
    assert.deepEqual(r.take(), [[], [], [3]]);
  });

  it("ages out addresses not heard from, then floods again", () => {
    const r = rig(3, { agingMs: 1000 });
    r.ports[0]?.send(frame(BROADCAST, mac(0), 60, 1));
    r.take();
    r.clock.t = 1000;
    r.ports[1]?.send(frame(mac(0), mac(1), 60, 2));
    assert.deepEqual(r.take(), [[2], [], []], "still known at exactly the aging time");
    r.clock.t = 1001;
    assert.equal(r.sw.lookup(mac(0)), null);
    r.ports[1]?.send(frame(mac(0), mac(1), 60, 3));
    assert.deepEqual(r.take(), [[3], [], [3]], "aged out: flooded");
    assert.equal(r.sw.learned, 1, "only mac(1), refreshed at 1001");
    // Traffic from a station keeps it alive.
    for (let t = 1500; t <= 5000; t += 500) {
      r.clock.t = t;
      r.ports[1]?.send(frame(BROADCAST, mac(1), 60, 4));
    }
    r.take();
    r.ports[0]?.send(frame(mac(1), mac(0), 60, 5));
    assert.deepEqual(r.take(), [[], [5], []]);
  });

  it("bounds the table: when full, new sources are not learned until old ones age out", () => {
    const r = rig(2, { agingMs: 100, maxAddresses: 2 });
    for (const n of [1, 2, 3]) r.ports[0]?.send(frame(BROADCAST, mac(n), 60, n));
    assert.equal(r.sw.learned, 2);
    assert.equal(r.sw.lookup(mac(3)), null);
    r.clock.t = 500;
    r.ports[0]?.send(frame(BROADCAST, mac(3), 60, 4));
    assert.equal(r.sw.lookup(mac(3)), r.ports[0]);
  });

  it("drops frames shorter than 14 bytes, over 65550 bytes or from a multicast source; counts per port", () => {
    const r = rig(2);
    r.ports[0]?.send(new Uint8Array(13));
    r.ports[0]?.send(new Uint8Array(0));
    r.ports[0]?.send(new Uint8Array(65551));
    r.ports[0]?.send(frame(BROADCAST, [0x01, 0, 0, 0, 0, 1]));
    r.ports[0]?.send(frame(BROADCAST, mac(0), 14));
    r.ports[0]?.send(frame(mac(1), mac(0), 100));
    assert.deepEqual(
      r.got.map((inbox) => inbox.length),
      [0, 2],
    );
    assert.deepEqual(r.ports[0]?.counters, {
      inFrames: 2,
      inBytes: 114,
      inErrors: 4,
      outFrames: 0,
      outBytes: 0,
      outDropped: 0,
    });
    assert.deepEqual(r.ports[1]?.counters, {
      inFrames: 0,
      inBytes: 0,
      inErrors: 0,
      outFrames: 2,
      outBytes: 114,
      outDropped: 0,
    });
  });

  it("a closed port gets nothing and its addresses are forgotten; a port without a receiver counts drops", () => {
    const r = rig(3);
    r.ports[1]?.send(frame(BROADCAST, mac(1), 60, 1));
    r.take();
    r.ports[1]?.close();
    assert.equal(r.sw.ports.length, 2);
    assert.equal(r.sw.lookup(mac(1)), null);
    r.ports[0]?.send(frame(mac(1), mac(0), 60, 2));
    assert.deepEqual(r.take(), [[], [], [2]]);
    r.ports[1]?.send(frame(BROADCAST, mac(1), 60, 3));
    assert.deepEqual(r.take(), [[], [], []], "a closed port sends nothing");
    const silent = r.sw.connect();
    assert.equal(silent.name, "test.3");
    r.ports[0]?.send(frame(BROADCAST, mac(0), 60, 4));
    assert.equal(silent.counters.outDropped, 1);
  });

  it("a receiver may send from its handler (the nested frame is forwarded at once)", () => {
    const sw = new VirtualSwitch("echo");
    const a = sw.connect();
    const b = sw.connect();
    const seen: number[] = [];
    a.onReceive((f) => seen.push(f[14] as number));
    b.onReceive((f) => {
      if (f[14] === 1) b.send(frame(mac(0), mac(1), 60, 2));
    });
    a.send(frame(BROADCAST, mac(0), 60, 1));
    assert.deepEqual(seen, [2]);
  });

  it("property: no port ever receives its own frame; every valid frame reaches its known destination", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            port: fc.integer({ min: 0, max: 3 }),
            src: fc.integer({ min: 0, max: 5 }),
            dst: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constant(-1)),
            length: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.constant(60)),
            dt: fc.integer({ min: 0, max: 400 }),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          const r = rig(4, { agingMs: 1000 });
          const where = new Map<number, { port: number; t: number }>();
          steps.forEach((s, k) => {
            r.clock.t += s.dt;
            const f = frame(s.dst < 0 ? BROADCAST : mac(s.dst), mac(s.src), s.length, k & 0xff);
            r.ports[s.port]?.send(f);
            const inboxes = r.got.map((inbox) => inbox.splice(0));
            assert.equal(inboxes[s.port]?.length, 0, "hairpin");
            if (s.length < 14) {
              assert.ok(inboxes.every((i) => i.length === 0));
              return;
            }
            // The source is learned before the destination is looked up.
            where.set(s.src, { port: s.port, t: r.clock.t });
            const known = s.dst >= 0 ? where.get(s.dst) : undefined;
            const fresh = known !== undefined && r.clock.t - known.t <= 1000;
            const receivers = inboxes.flatMap((inbox, i) => (inbox.length > 0 ? [i] : []));
            if (fresh && known.port !== s.port) assert.deepEqual(receivers, [known.port]);
            else if (fresh) assert.deepEqual(receivers, []);
            else
              assert.deepEqual(
                receivers,
                [0, 1, 2, 3].filter((i) => i !== s.port),
              );
          });
        },
      ),
    );
  });

  it("a registry hands out one switch per name", () => {
    const reg = new SwitchRegistry();
    assert.equal(reg.get("a"), reg.get("a"));
    assert.notEqual(reg.get("a"), reg.get("b"));
    assert.deepEqual(reg.names(), ["a", "b"]);
  });
});

describe("MAC addresses", () => {
  it("parse, format, default per VM and NIC", () => {
    assert.deepEqual(parseMac("52:54:00:AB:cd:0f"), Uint8Array.from([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
    assert.deepEqual(parseMac("52-54-00-ab-cd-0f"), parseMac("52:54:00:ab:cd:0f"));
    for (const bad of ["", "52:54:00:ab:cd", "52:54:00:ab:cd:0f:00", "52:54:00:ab:cd:g0", "525400abcd0f"]) {
      assert.equal(parseMac(bad), null, bad);
    }
    assert.equal(formatMac(defaultMac(3, 1)), "52:54:00:76:03:01");
    assert.ok(isUnicastMac(defaultMac(0, 0)));
    assert.ok(!isUnicastMac([1, 0, 0, 0, 0, 0]));
    assert.ok(!isUnicastMac([0, 0, 0, 0, 0, 0]));
    assert.throws(() => defaultMac(256, 0), RangeError);
  });
});
