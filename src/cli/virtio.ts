import type { GuestMemory } from "../devices/device.js";
import { VirtioBalloon } from "../devices/virtio/balloon/virtio-balloon.js";
import { VirtioBlk } from "../devices/virtio/blk/virtio-blk.js";
import { type ConsoleSink, VirtioConsole } from "../devices/virtio/console/virtio-console.js";
import type { VirtioDevice } from "../devices/virtio/device.js";
import { DEFAULT_VIRTIO_RING } from "../devices/virtio/mmio.js";
import type { RingFormat } from "../devices/virtio/queue.js";
import { VirtioRng } from "../devices/virtio/rng/virtio-rng.js";
import { cryptoEntropy } from "../host/entropy.js";
import { hostPageReclaimer } from "../host/page-reclaimer.js";
import { UserError } from "../util/errors.js";
import type { ParsedArgs } from "./args.js";
import type { OpenDrives } from "./drive-files.js";

/** One `--drive file=PATH[,readonly=on][,id=NAME]`. */
export interface DriveSpec {
  file: string;
  readOnly: boolean;
  /** The serial number the guest reads (GET_ID; /dev/disk/by-id/virtio-NAME). */
  id: string;
  /** The flag that asked for it, for messages (default "--drive"). */
  flag?: string;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,20}$/;

/**
 * Parses a --drive value: comma-separated KEY=VALUE options (",," is a literal comma, as in QEMU).
 * `index` numbers the drive for the default id ("drive0", "drive1"...).
 */
export function parseDrive(text: string, index: number): DriveSpec {
  const options = new Map<string, string>();
  for (const part of text.replaceAll(",,", "\0").split(",")) {
    const option = part.replaceAll("\0", ",");
    const eq = option.indexOf("=");
    if (eq <= 0) throw new UserError(`--drive ${text}: '${option}' is not KEY=VALUE`);
    const key = option.slice(0, eq);
    if (!["file", "readonly", "id"].includes(key)) {
      throw new UserError(`--drive ${text}: unknown option '${key}' (file, readonly, id)`);
    }
    if (options.has(key)) throw new UserError(`--drive ${text}: '${key}' given twice`);
    options.set(key, option.slice(eq + 1));
  }
  const file = options.get("file");
  if (file === undefined || file === "") throw new UserError(`--drive ${text}: needs file=PATH`);
  const readonly = options.get("readonly") ?? "off";
  if (readonly !== "on" && readonly !== "off") {
    throw new UserError(`--drive ${text}: readonly must be on or off, got '${readonly}'`);
  }
  const id = options.get("id") ?? `drive${index}`;
  if (!ID_PATTERN.test(id)) {
    throw new UserError(`--drive ${text}: id must be 1 to 20 letters, digits, '.', '_' or '-'`);
  }
  return { file, readOnly: readonly === "on", id };
}

/**
 * What the attach helpers need of a board (the RISC-V virt board and the x86 microVM both have it): its
 * virtio-mmio slots and the guest RAM their devices see.
 */
export interface VirtioBoard {
  readonly virtio: {
    attach(device: VirtioDevice): unknown;
    readonly memory: GuestMemory;
  };
}

/** --virtio-ring split|packed: the virtqueue formats devices offer (packed also offers split). */
export function parseVirtioRing(args: ParsedArgs): RingFormat {
  const text = args.values.get("virtio-ring") ?? DEFAULT_VIRTIO_RING;
  if (text !== "split" && text !== "packed") {
    throw new UserError(`--virtio-ring ${text}: expected split or packed`);
  }
  return text;
}

export interface VirtioRequest {
  /** Opened and locked before the board was built (openDrives); closed with the VirtioSetup. */
  drives: OpenDrives;
  rng: boolean;
  console: boolean;
  /** A memory balloon; `targetBytes` (if not null) is set once the guest's driver is up. */
  balloon?: { targetBytes: number | null } | null;
}

/** What `attachVirtio` set up: the console (if any) and a way to close the image files (and unlock them). */
export interface VirtioSetup {
  console: VirtioConsole | null;
  close(): Promise<void>;
}

/**
 * Attaches the requested devices to the board's virtio slots, in this order: the drives (the first is
 * /dev/vda), the entropy device, the console, the balloon.
 */
export function attachVirtio(board: VirtioBoard, request: VirtioRequest, output: ConsoleSink): VirtioSetup {
  for (const { spec, backend } of request.drives.drives) {
    board.virtio.attach(new VirtioBlk(backend, { serial: spec.id }));
  }
  if (request.rng) board.virtio.attach(new VirtioRng(cryptoEntropy));
  let console: VirtioConsole | null = null;
  if (request.console) {
    const tty = process.stdout.isTTY === true;
    console = new VirtioConsole(
      output,
      tty ? { cols: process.stdout.columns, rows: process.stdout.rows } : {},
    );
    board.virtio.attach(console);
  }
  if (request.balloon) {
    // madvise releases the host memory behind inflated pages (Linux); elsewhere they are only counted.
    const balloon = new VirtioBalloon(hostPageReclaimer(board.virtio.memory.bytes));
    const target = request.balloon.targetBytes;
    if (target !== null) {
      // Once, when the guest's driver first sets DRIVER_OK: a configuration change it acts on at once.
      balloon.onActivate = () => {
        balloon.onActivate = null;
        balloon.setTargetBytes(target);
      };
    }
    board.virtio.attach(balloon);
  }
  return { console, close: () => request.drives.close() };
}
