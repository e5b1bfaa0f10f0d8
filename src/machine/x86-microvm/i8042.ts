/**
 * An i8042 keyboard controller with a keyboard that has one chord, Ctrl-Alt-Del. It is there for three
 * reasons: the guest resets the machine by writing command 0xfe to port 0x64 (Linux's reboot=k); Linux's
 * i8042/atkbd probe finishes quickly when controller commands get answers instead of timing out; and the
 * host asks the guest to power off by pressing Ctrl-Alt-Del (Firecracker's SendCtrlAltDel), which Linux's
 * keyboard driver turns into a signal to init.
 *
 * Register window: offset 0 = data port (0x60), offset 4 = status/command port (0x64).
 *
 * As on real hardware the output buffer holds one byte at a time: a keyboard byte enters it only when it
 * is empty and the keyboard interface is enabled (CTR bit 4 clear), and each byte that enters raises
 * IRQ 1 (if CTR bit 0 allows). The keyboard speaks scan code set 2; with CTR bit 6 (translation) set the
 * controller hands set 1 codes to the guest, which is what Linux's atkbd expects behind a translating
 * port (its default: the serio port type is SERIO_8042_XL unless i8042.direct or a CTR without XLATE).
 */
import type { InterruptLine, MmioDevice } from "../../devices/device.js";
import { RecordReader } from "../../util/record.js";

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;
/** Controller configuration byte: keyboard interrupt enabled, system flag, translation. */
const CTR_DEFAULT = 0x45;
const CTR_KBD_INT = 0x01;
const CTR_KBD_DISABLED = 0x10;
const CTR_TRANSLATE = 0x40;

/** Set 2: a make code, optionally after the E0 prefix; a break is F0 before the code. */
const SET2_EXTENDED = 0xe0;
const SET2_BREAK = 0xf0;
const SET2_CTRL = 0x14;
const SET2_ALT = 0x11;
const SET2_DELETE = 0x71;

/** The set 1 code the controller's translation gives for each set 2 code this keyboard sends. */
const TRANSLATED: ReadonlyMap<number, number> = new Map([
  [SET2_CTRL, 0x1d],
  [SET2_ALT, 0x38],
  [SET2_DELETE, 0x53],
  [SET2_EXTENDED, SET2_EXTENDED],
]);

/** Ctrl, Alt, Delete pressed, then released in the opposite order (set 2). */
const CTRL_ALT_DEL = [
  SET2_CTRL,
  SET2_ALT,
  SET2_EXTENDED,
  SET2_DELETE,
  SET2_EXTENDED,
  SET2_BREAK,
  SET2_DELETE,
  SET2_BREAK,
  SET2_ALT,
  SET2_BREAK,
  SET2_CTRL,
];

export interface I8042State {
  version: 1;
  output: number[];
  keyboard: number[];
  breakPrefix: boolean;
  ctr: number;
  status: number;
  pendingCommand: number;
  outputPort: number;
}

export class I8042 implements MmioDevice {
  readonly name = "i8042";
  /** Controller and keyboard replies; the first byte is the one in the output buffer. */
  private readonly output: number[] = [];
  /** Scan codes (set 2) the keyboard has not yet got into the output buffer. */
  private readonly keyboard: number[] = [];
  /** The translator saw F0: the next code is a break (set 1: bit 7 set). */
  private breakPrefix = false;
  private ctr = CTR_DEFAULT;
  private status = STATUS_SYS;
  /** The command whose parameter the next data-port write is. */
  private pendingCommand = 0;
  private outputPort = 0x01;

  constructor(
    private readonly irq: InterruptLine,
    private readonly onReset: () => void,
  ) {}

  /** Queues Ctrl-Alt-Del, press and release: what the host sends as its power-off request. */
  pressCtrlAltDel(): void {
    this.keyboard.push(...CTRL_ALT_DEL);
    this.fill();
  }

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (size !== 1 || (offset !== 0 && offset !== 4)) return false;
    out[1] = 0;
    if (offset === 4) {
      out[0] = this.status | (this.output.length > 0 ? STATUS_OBF : 0);
      return true;
    }
    out[0] = this.output.shift() ?? 0;
    if (this.output.length > 0) this.pulse();
    else this.fill();
    return true;
  }

  write(offset: number, size: number, lo: number, _hi = 0): boolean {
    if (size !== 1 || (offset !== 0 && offset !== 4)) return false;
    const value = lo & 0xff;
    if (offset === 4) this.command(value);
    else this.data(value);
    return true;
  }

  private command(cmd: number): void {
    this.status |= STATUS_CMD;
    this.pendingCommand = 0;
    switch (cmd) {
      case 0x20: // read CTR
        this.reply(this.ctr);
        break;
      case 0x60: // write CTR (parameter follows)
      case 0xd1: // write output port
      case 0xd2: // write keyboard output buffer
        this.pendingCommand = cmd;
        break;
      case 0xaa: // controller self-test
        this.reply(0x55);
        break;
      case 0xab: // keyboard interface test
        this.reply(0x00);
        break;
      case 0xad: // disable the keyboard interface
        this.ctr |= CTR_KBD_DISABLED;
        break;
      case 0xae: // enable the keyboard interface
        this.ctr &= ~CTR_KBD_DISABLED;
        this.fill();
        break;
      case 0xd0: // read output port
        this.reply(this.outputPort);
        break;
      case 0xfe: // pulse the reset line
        this.onReset();
        break;
      default:
        // Aux port commands (no mouse: 0xa9 test would fail, Linux is told i8042.noaux) and the rest need
        // no answer.
        if (cmd === 0xa9) this.reply(0xff);
        else if ((cmd & 0xf0) === 0xf0 && (cmd & 0x01) === 0) this.onReset();
    }
  }

  private data(value: number): void {
    this.status &= ~STATUS_CMD;
    const cmd = this.pendingCommand;
    this.pendingCommand = 0;
    switch (cmd) {
      case 0x60:
        this.ctr = value;
        this.fill();
        return;
      case 0xd1:
        this.outputPort = value;
        if ((value & 0x01) === 0) this.onReset();
        return;
      case 0xd2:
        this.reply(value);
        return;
    }
    // A byte for the keyboard itself: acknowledge; identify and reset get their usual answers.
    switch (value) {
      case 0xf2:
        this.reply(0xfa, 0xab, 0x83);
        break;
      case 0xff:
        this.reply(0xfa, 0xaa);
        break;
      case 0xee:
        this.reply(0xee);
        break;
      default:
        this.reply(0xfa);
    }
  }

  private reply(...bytes: number[]): void {
    const wasEmpty = this.output.length === 0;
    this.output.push(...bytes);
    if (wasEmpty) this.pulse();
  }

  /** Moves the next keyboard byte into an empty output buffer, translated to set 1 if the CTR says so. */
  private fill(): void {
    while (this.output.length === 0 && this.keyboard.length > 0 && (this.ctr & CTR_KBD_DISABLED) === 0) {
      const code = this.keyboard.shift() as number;
      if ((this.ctr & CTR_TRANSLATE) === 0) {
        this.reply(code);
      } else if (code === SET2_BREAK) {
        this.breakPrefix = true;
      } else {
        const set1 = TRANSLATED.get(code) as number;
        this.reply(code === SET2_EXTENDED || !this.breakPrefix ? set1 : set1 | 0x80);
        if (code !== SET2_EXTENDED) this.breakPrefix = false;
      }
    }
  }

  snapshot(): I8042State {
    return {
      version: 1,
      output: [...this.output],
      keyboard: [...this.keyboard],
      breakPrefix: this.breakPrefix,
      ctr: this.ctr,
      status: this.status,
      pendingCommand: this.pendingCommand,
      outputPort: this.outputPort,
    };
  }

  /**
   * Restores a `snapshot()`; a malformed record throws a TypeError naming the field and changes nothing.
   * No interrupt is raised: IRQ 1 is an edge the saved guest has already been given (or masked).
   */
  restore(state: unknown): void {
    const s = new RecordReader("i8042", state, 1);
    // The guest's replies are at most three bytes; a queued chord at most a few presses.
    const output = s.list("output", 16, 0, 0xff);
    const keyboard = s.list("keyboard", 1024, 0, 0xff);
    if (!keyboard.every((c) => c === SET2_BREAK || TRANSLATED.has(c)))
      s.fail("keyboard", "set 2 codes it sends");
    const values = {
      breakPrefix: s.bool("breakPrefix"),
      ctr: s.int("ctr", 0, 0xff),
      status: s.int("status", 0, 0xff),
      pendingCommand: s.int("pendingCommand", 0, 0xff),
      outputPort: s.int("outputPort", 0, 0xff),
    };
    if (![0, 0x60, 0xd1, 0xd2].includes(values.pendingCommand))
      s.fail("pendingCommand", "0, 0x60, 0xd1 or 0xd2");
    this.output.splice(0, this.output.length, ...output);
    this.keyboard.splice(0, this.keyboard.length, ...keyboard);
    this.breakPrefix = values.breakPrefix;
    this.ctr = values.ctr;
    this.status = values.status & ~STATUS_OBF;
    this.pendingCommand = values.pendingCommand;
    this.outputPort = values.outputPort;
  }

  /** An edge on IRQ 1 for the byte now in the output buffer, if the keyboard interrupt is enabled. */
  private pulse(): void {
    if ((this.ctr & CTR_KBD_INT) === 0) return;
    this.irq.set(true);
    this.irq.set(false);
  }
}
