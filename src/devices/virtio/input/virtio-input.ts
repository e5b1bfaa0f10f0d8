import { ConfigSpace, type VirtioDevice, type VirtioHost } from "../device.js";
import { DeviceId } from "../spec.js";
import { EV_KEY, EV_LED, EV_SYN, KEY, LED_COUNT, MAX_KEY, SYN_REPORT } from "./codes.js";

/** virtio_input_config.select values (virtio 1.2 §5.8.4). */
export const InputConfig = {
  UNSET: 0x00,
  ID_NAME: 0x01,
  ID_SERIAL: 0x02,
  ID_DEVIDS: 0x03,
  PROP_BITS: 0x10,
  EV_BITS: 0x11,
  ABS_INFO: 0x12,
} as const;

/** Config layout: select u8, subsel u8, size u8, reserved[5], then a 128-byte union. */
const CONFIG_SELECT = 0;
const CONFIG_SUBSEL = 1;
const CONFIG_SIZE_FIELD = 2;
const CONFIG_UNION = 8;
const UNION_SIZE = 128;
const CONFIG_SIZE = CONFIG_UNION + UNION_SIZE;

const EVENTQ = 0;
const STATUSQ = 1;
const QUEUE_SIZE = 64;
/** virtio_input_event: type u16, code u16, value u32. */
export const EVENT_SIZE = 8;
/**
 * Events held while the guest has posted no event buffers (its driver not up yet, or busy): enough
 * for a few presses; a press that does not fit whole is dropped whole (half a press would leave keys
 * down in the guest).
 */
export const MAX_PENDING_EVENTS = 128;

/** BUS_VIRTUAL (linux/input.h): what /sys/class/input/…/id/bustype says. */
const BUS_VIRTUAL = 0x06;

export interface VirtioInputOptions {
  name?: string;
  serial?: string;
}

/** Counters, as plain data. */
export interface VirtioInputStats {
  /** Events written into the guest's event buffers. */
  delivered: number;
  /** Events of presses refused because the pending queue was full. */
  dropped: number;
  /** Buffers of the status queue consumed (LED changes the guest sends). */
  statusEvents: number;
}

/** The keyboard's state as plain data. */
export interface VirtioInputState {
  version: 1;
  select: number;
  subsel: number;
  /** Pending events, flattened: type, code, value, type, code, value... */
  pending: number[];
  leds: number;
  stats: VirtioInputStats;
}

/**
 * virtio-input (ID 18) as a keyboard: the config space answers the driver's questions (name, serial,
 * IDs, which event types and codes exist: EV_KEY for key codes 1..255, EV_LED for Num/Caps/Scroll
 * Lock); the host's key presses go into the buffers the driver posts on the event queue, one
 * virtio_input_event each, every key change followed by EV_SYN; the status queue carries the guest's
 * LED changes, which are read, remembered and returned. A chain the device cannot use (outside RAM,
 * too short for one event) stops its queue with DEVICE_NEEDS_RESET.
 */
export class VirtioInput implements VirtioDevice {
  readonly name = "virtio-input";
  readonly deviceId = DeviceId.INPUT;
  readonly features: readonly number[] = [0];
  readonly queueSizes: readonly number[] = [QUEUE_SIZE, QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  private readonly config = new ConfigSpace(CONFIG_SIZE);
  private host: VirtioHost | undefined;
  private readonly nameBytes: Uint8Array;
  private readonly serialBytes: Uint8Array;
  private pending: number[] = [];
  private ledBits = 0;
  private readonly counters: VirtioInputStats = { delivered: 0, dropped: 0, statusEvents: 0 };
  private readonly event = new Uint8Array(EVENT_SIZE);
  private readonly eventView = new DataView(this.event.buffer);

  constructor(options: VirtioInputOptions = {}) {
    this.nameBytes = configString(options.name ?? "Vireo virtio keyboard");
    this.serialBytes = configString(options.serial ?? "");
  }

  attach(host: VirtioHost): void {
    this.host = host;
  }

  get stats(): VirtioInputStats {
    return { ...this.counters };
  }

  /** Events waiting for event buffers. */
  get pendingEvents(): number {
    return this.pending.length / 3;
  }

  /** The LEDs the guest last set: bit 0 Num Lock, 1 Caps Lock, 2 Scroll Lock. */
  get leds(): number {
    return this.ledBits;
  }

  /**
   * Presses the keys (Linux key codes, 1..255) together and releases them, in reverse order: each key
   * down, then each key up, every change followed by EV_SYN. False (and counted as dropped) when the
   * pending queue cannot take the whole press.
   */
  press(keys: readonly number[]): boolean {
    for (const k of keys) {
      if (!Number.isInteger(k) || k < 1 || k > MAX_KEY)
        throw new RangeError(`virtio-input: key code ${k} is not 1..${MAX_KEY}`);
    }
    const events = keys.length * 4;
    if (this.pendingEvents + events > MAX_PENDING_EVENTS) {
      this.counters.dropped += events;
      return false;
    }
    for (const k of keys) this.pending.push(EV_KEY, k, 1, EV_SYN, SYN_REPORT, 0);
    for (const k of [...keys].reverse()) this.pending.push(EV_KEY, k, 0, EV_SYN, SYN_REPORT, 0);
    this.deliver();
    return true;
  }

  /** The guest's reboot chord; Linux turns it into SIGINT for init when ctrl-alt-del is 0. */
  pressCtrlAltDel(): boolean {
    return this.press([KEY.LEFTCTRL, KEY.LEFTALT, KEY.DELETE]);
  }

  readConfig(offset: number, size: number): number {
    return this.config.read(offset, size);
  }

  /** Only select and subsel are writable; each write answers the new question at once. */
  writeConfig(offset: number, size: number, value: number): void {
    let changed = false;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at === CONFIG_SELECT || at === CONFIG_SUBSEL) {
        this.config.u8(at, (value >>> (8 * i)) & 0xff);
        changed = true;
      }
    }
    if (changed) this.answer();
  }

  activate(): void {
    this.deliver();
    this.consumeStatus();
  }

  notify(index: number): void {
    if (index === EVENTQ) this.deliver();
    else if (index === STATUSQ) this.consumeStatus();
  }

  reset(): void {
    // Presses made before the driver (re)starts stay queued for it: a stop request during boot counts.
    this.config.u8(CONFIG_SELECT, 0);
    this.config.u8(CONFIG_SUBSEL, 0);
    this.answer();
  }

  snapshot(): VirtioInputState {
    return {
      version: 1,
      select: this.config.read(CONFIG_SELECT, 1),
      subsel: this.config.read(CONFIG_SUBSEL, 1),
      pending: [...this.pending],
      leds: this.ledBits,
      stats: { ...this.counters },
    };
  }

  restore(state: unknown): void {
    if (typeof state !== "object" || state === null)
      throw new TypeError("virtio-input snapshot: not an object");
    const s = state as Record<string, unknown>;
    if (s.version !== 1) throw new TypeError("virtio-input snapshot: unsupported version");
    const isInt = (v: unknown, max: number): v is number =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max;
    const { select, subsel, pending, leds, stats } = s;
    if (!isInt(select, 0xff) || !isInt(subsel, 0xff))
      throw new RangeError("virtio-input snapshot: bad select");
    if (
      !Array.isArray(pending) ||
      pending.length % 3 !== 0 ||
      pending.length / 3 > MAX_PENDING_EVENTS ||
      !pending.every((v, i) => isInt(v, i % 3 === 2 ? 0xffff_ffff : 0xffff))
    ) {
      throw new RangeError("virtio-input snapshot: bad pending events");
    }
    if (!isInt(leds, (1 << LED_COUNT) - 1)) throw new RangeError("virtio-input snapshot: bad leds");
    const st = stats as Record<string, unknown> | null;
    const counts = ["delivered", "dropped", "statusEvents"] as const;
    if (typeof st !== "object" || st === null || !counts.every((k) => isInt(st[k], Number.MAX_SAFE_INTEGER)))
      throw new RangeError("virtio-input snapshot: bad stats");
    this.config.u8(CONFIG_SELECT, select);
    this.config.u8(CONFIG_SUBSEL, subsel);
    this.answer();
    this.pending = [...(pending as number[])];
    this.ledBits = leds;
    for (const k of counts) this.counters[k] = st[k] as number;
  }

  /** Fills size and the union for the current select/subsel (size 0: nothing to say, §5.8.5). */
  private answer(): void {
    const select = this.config.read(CONFIG_SELECT, 1);
    const subsel = this.config.read(CONFIG_SUBSEL, 1);
    this.config.bytes.fill(0, CONFIG_UNION);
    let size = 0;
    const put = (bytes: Uint8Array) => {
      this.config.bytes.set(bytes, CONFIG_UNION);
      size = bytes.length;
    };
    switch (select) {
      case InputConfig.ID_NAME:
        if (subsel === 0) put(this.nameBytes);
        break;
      case InputConfig.ID_SERIAL:
        if (subsel === 0) put(this.serialBytes);
        break;
      case InputConfig.ID_DEVIDS:
        if (subsel === 0) {
          this.config.u16(CONFIG_UNION, BUS_VIRTUAL);
          this.config.u16(CONFIG_UNION + 2, 0);
          this.config.u16(CONFIG_UNION + 4, 1);
          this.config.u16(CONFIG_UNION + 6, 1);
          size = 8;
        }
        break;
      case InputConfig.EV_BITS:
        if (subsel === EV_KEY) put(bitmap(1, MAX_KEY));
        else if (subsel === EV_LED) put(bitmap(0, LED_COUNT - 1));
        break;
      // PROP_BITS and ABS_INFO: a keyboard has neither; other selects are unknown.
    }
    this.config.u8(CONFIG_SIZE_FIELD, size);
  }

  /** Pending events into the event buffers the guest posted, one event per buffer, in order. */
  private deliver(): void {
    const host = this.host;
    if (this.pending.length === 0 || host === undefined || !host.active) return;
    const q = host.queue(EVENTQ);
    if (!q.usable) return;
    let used = false;
    let at = 0;
    while (at < this.pending.length) {
      const chain = q.pop();
      if (chain === null) break;
      if (chain.fault !== null || chain.writableBytes < EVENT_SIZE) {
        host.fail(
          EVENTQ,
          chain.fault ?? `an event buffer of ${chain.writableBytes} bytes (an event takes 8)`,
        );
        break;
      }
      this.eventView.setUint16(0, this.pending[at] as number, true);
      this.eventView.setUint16(2, this.pending[at + 1] as number, true);
      this.eventView.setUint32(4, this.pending[at + 2] as number, true);
      chain.writeBytes(0, this.event, 0, EVENT_SIZE);
      q.push(chain, EVENT_SIZE);
      at += 3;
      this.counters.delivered++;
      used = true;
    }
    this.pending.splice(0, at);
    if (used) host.signalUsed(EVENTQ);
  }

  /** The guest's status events (LED changes): read, remembered, returned. */
  private consumeStatus(): void {
    const host = this.host;
    if (host === undefined || !host.active) return;
    const q = host.queue(STATUSQ);
    if (!q.usable) return;
    let used = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      if (chain.fault !== null || chain.readBytes(0, this.event, 0, EVENT_SIZE) < EVENT_SIZE) {
        host.fail(
          STATUSQ,
          chain.fault ?? `a status buffer of ${chain.readableBytes} bytes (an event takes 8)`,
        );
        break;
      }
      const type = this.eventView.getUint16(0, true);
      const code = this.eventView.getUint16(2, true);
      const value = this.eventView.getUint32(4, true);
      if (type === EV_LED && code < LED_COUNT) {
        this.ledBits = value !== 0 ? this.ledBits | (1 << code) : this.ledBits & ~(1 << code);
      }
      this.counters.statusEvents++;
      q.push(chain, 0);
      used = true;
    }
    if (used) host.signalUsed(STATUSQ);
  }
}

/** A config string: UTF-8, at most the union's 128 bytes (no NUL needed, §5.8.4). */
function configString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > UNION_SIZE) throw new RangeError(`virtio-input: '${text}' is longer than 128 bytes`);
  return bytes;
}

/** An event-code bitmap (bit n of byte n/8) with codes first..last set, as short as it can be. */
function bitmap(first: number, last: number): Uint8Array {
  const bytes = new Uint8Array((last >> 3) + 1);
  for (let c = first; c <= last; c++) bytes[c >> 3] = (bytes[c >> 3] as number) | (1 << (c & 7));
  return bytes;
}
