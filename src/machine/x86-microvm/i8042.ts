/**
 * An i8042 keyboard controller with no keyboard behind it, there for two reasons: the guest resets the
 * machine by writing command 0xfe to port 0x64 (Linux's reboot=k), and Linux's i8042/atkbd probe finishes
 * quickly when controller commands get answers instead of timing out.
 *
 * Register window: offset 0 = data port (0x60), offset 4 = status/command port (0x64).
 */
import type { InterruptLine, MmioDevice } from "../../devices/device.js";

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;
/** Controller configuration byte: keyboard interrupt enabled, system flag, translation. */
const CTR_DEFAULT = 0x45;
const CTR_KBD_INT = 0x01;

export class I8042 implements MmioDevice {
  readonly name = "i8042";
  private readonly output: number[] = [];
  private ctr = CTR_DEFAULT;
  private status = STATUS_SYS;
  /** The command whose parameter the next data-port write is. */
  private pendingCommand = 0;
  private outputPort = 0x01;

  constructor(
    private readonly irq: InterruptLine,
    private readonly onReset: () => void,
  ) {}

  read(offset: number, size: number, out: Uint32Array): boolean {
    if (size !== 1 || (offset !== 0 && offset !== 4)) return false;
    out[1] = 0;
    if (offset === 4) {
      out[0] = this.status | (this.output.length > 0 ? STATUS_OBF : 0);
      return true;
    }
    out[0] = this.output.shift() ?? 0;
    if (this.output.length > 0) this.pulse();
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
      case 0xd0: // read output port
        this.reply(this.outputPort);
        break;
      case 0xfe: // pulse the reset line
        this.onReset();
        break;
      default:
        // Aux port commands (no mouse: 0xa9 test would fail, Linux is told i8042.noaux), enable/disable
        // keyboard (0xad/0xae), and the rest need no answer.
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
    this.output.push(...bytes);
    this.pulse();
  }

  /** An edge on IRQ 1 for a byte in the output buffer, if the keyboard interrupt is enabled. */
  private pulse(): void {
    if ((this.ctr & CTR_KBD_INT) === 0) return;
    this.irq.set(true);
    this.irq.set(false);
  }
}
