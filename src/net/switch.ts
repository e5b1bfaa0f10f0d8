import type { NetBackend } from "../devices/virtio/net/backend.js";

/**
 * An in-process Ethernet switch: a learning bridge between ports, each of which is a NetBackend a
 * virtio-net device (of any VM in this process, on any engine) or anything else plugs into. No Node
 * API: it runs wherever the devices do.
 *
 * - Learning: a frame's source MAC is remembered on its ingress port (moving if it shows up on
 *   another); entries age out after `agingMs` without traffic from that address (802.1D's default is
 *   300 s), and the table holds at most `maxAddresses` entries (when full, unknown sources are not
 *   learned and their replies are flooded).
 * - Forwarding: a unicast frame to a known address goes to that port only; broadcast, multicast and
 *   unknown destinations are flooded to every other port. A frame is never sent back to the port it
 *   came in on (a known destination on the ingress port is filtered).
 * - Frames shorter than an Ethernet header (14 bytes), longer than MAX_SWITCH_FRAME, or with a
 *   multicast source address are dropped and counted on the ingress port.
 *
 * Delivery is synchronous: `send` on one port calls the receive handlers of the destination ports
 * before it returns, all with the same frame object, which they must copy if they keep it (virtio-net
 * does). A handler may itself send (the nested frame is forwarded at once).
 */

/** Longest frame the switch carries: a 65535-byte payload, the Ethernet header and one spare byte. */
export const MAX_SWITCH_FRAME = 65550;
const ETH_HEADER = 14;
/** 802.1D's default ageing time. */
export const DEFAULT_AGING_MS = 300_000;
export const DEFAULT_MAX_ADDRESSES = 4096;

export interface SwitchOptions {
  /** Forget an address after this long without a frame from it (default 300 000 ms). */
  agingMs?: number;
  /** Most addresses learned at once (default 4096). */
  maxAddresses?: number;
  /** Milliseconds from any origin (default performance.now); tests drive aging with their own. */
  now?: () => number;
}

/** Per-port counters, from the switch's point of view ("in": from the port's device into the switch). */
export interface PortCounters {
  inFrames: number;
  inBytes: number;
  /** Frames from the device dropped as malformed (too short or long, multicast source). */
  inErrors: number;
  outFrames: number;
  outBytes: number;
  /** Frames that would have gone out of this port while it had no receive handler. */
  outDropped: number;
}

interface Station {
  port: SwitchPort;
  /** `now()` when its last frame came in. */
  seen: number;
}

/** A MAC address (6 bytes at `offset`) as a number below 2^48. */
function macKey(frame: Uint8Array, offset: number): number {
  let key = 0;
  for (let i = 0; i < 6; i++) key = key * 256 + (frame[offset + i] as number);
  return key;
}

/** One port: the NetBackend its device uses. */
export class SwitchPort implements NetBackend {
  readonly counters: PortCounters = {
    inFrames: 0,
    inBytes: 0,
    inErrors: 0,
    outFrames: 0,
    outBytes: 0,
    outDropped: 0,
  };
  private handler: ((frame: Uint8Array) => void) | null = null;
  private connected = true;

  constructor(
    private readonly bridge: VirtualSwitch,
    readonly name: string,
  ) {}

  get isConnected(): boolean {
    return this.connected;
  }

  /** A frame from this port's device into the switch. */
  send(frame: Uint8Array): void {
    if (this.connected) this.bridge.forward(this, frame);
  }

  onReceive(handler: (frame: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** Unplugs the port: the switch forgets it and the addresses learned on it. */
  close(): void {
    if (!this.connected) return;
    this.connected = false;
    this.handler = null;
    this.bridge.disconnect(this);
  }

  /** @internal The switch hands a frame to this port's device. */
  output(frame: Uint8Array): void {
    const handler = this.handler;
    if (handler === null) {
      this.counters.outDropped++;
      return;
    }
    this.counters.outFrames++;
    this.counters.outBytes += frame.length;
    handler(frame);
  }
}

export class VirtualSwitch {
  /** Frames forwarded to one known port, flooded, filtered (destination on the ingress port). */
  readonly counters = { unicast: 0, flooded: 0, filtered: 0 };
  private readonly portList: SwitchPort[] = [];
  private readonly table = new Map<number, Station>();
  private readonly agingMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  private portsMade = 0;

  constructor(
    readonly name = "switch",
    options: SwitchOptions = {},
  ) {
    this.agingMs = options.agingMs ?? DEFAULT_AGING_MS;
    this.maxAddresses = options.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
    if (!(this.agingMs > 0)) throw new RangeError("switch: agingMs must be positive");
    if (!Number.isInteger(this.maxAddresses) || this.maxAddresses < 1) {
      throw new RangeError("switch: maxAddresses must be a positive integer");
    }
    this.now = options.now ?? (() => performance.now());
  }

  /** A new port (its name defaults to "<switch>.<n>"). */
  connect(name?: string): SwitchPort {
    const port = new SwitchPort(this, name ?? `${this.name}.${this.portsMade}`);
    this.portsMade++;
    this.portList.push(port);
    return port;
  }

  get ports(): readonly SwitchPort[] {
    return this.portList;
  }

  /** The port a MAC address (six bytes) was last seen on, if it has not aged out. */
  lookup(mac: ArrayLike<number>): SwitchPort | null {
    const station = this.table.get(macKey(Uint8Array.from(mac), 0));
    if (station === undefined || this.now() - station.seen > this.agingMs) return null;
    return station.port;
  }

  /** Addresses currently learned (aged ones are removed first). */
  get learned(): number {
    this.purgeAged();
    return this.table.size;
  }

  /** @internal A frame came in on `from`. */
  forward(from: SwitchPort, frame: Uint8Array): void {
    const c = from.counters;
    if (frame.length < ETH_HEADER || frame.length > MAX_SWITCH_FRAME || ((frame[6] as number) & 1) !== 0) {
      c.inErrors++;
      return;
    }
    c.inFrames++;
    c.inBytes += frame.length;
    const now = this.now();
    this.learn(macKey(frame, 6), from, now);
    if (((frame[0] as number) & 1) === 0) {
      const station = this.table.get(macKey(frame, 0));
      if (station !== undefined && now - station.seen <= this.agingMs) {
        if (station.port === from) this.counters.filtered++;
        else {
          this.counters.unicast++;
          station.port.output(frame);
        }
        return;
      }
    }
    this.counters.flooded++;
    // A handler may connect or close ports: flood to the ports present when the frame came in.
    for (const port of this.portList.slice()) {
      if (port !== from && port.isConnected) port.output(frame);
    }
  }

  /** @internal */
  disconnect(port: SwitchPort): void {
    const i = this.portList.indexOf(port);
    if (i >= 0) this.portList.splice(i, 1);
    for (const [key, station] of this.table) if (station.port === port) this.table.delete(key);
  }

  private learn(key: number, port: SwitchPort, now: number): void {
    const station = this.table.get(key);
    if (station !== undefined) {
      station.port = port;
      station.seen = now;
      return;
    }
    if (this.table.size >= this.maxAddresses) {
      this.purgeAged();
      if (this.table.size >= this.maxAddresses) return;
    }
    this.table.set(key, { port, seen: now });
  }

  private purgeAged(): void {
    const now = this.now();
    for (const [key, station] of this.table) if (now - station.seen > this.agingMs) this.table.delete(key);
  }
}

/** Switches by name, created on first use: how VMs of one process find the same switch. */
export class SwitchRegistry {
  private readonly switches = new Map<string, VirtualSwitch>();

  constructor(private readonly options: SwitchOptions = {}) {}

  get(name: string): VirtualSwitch {
    let s = this.switches.get(name);
    if (s === undefined) {
      s = new VirtualSwitch(name, this.options);
      this.switches.set(name, s);
    }
    return s;
  }

  names(): string[] {
    return [...this.switches.keys()];
  }
}
