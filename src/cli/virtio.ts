import { DEFAULT_VIRTIO_RING } from "../devices/virtio/mmio.js";
import type { RingFormat } from "../devices/virtio/queue.js";
import { UserError } from "../util/errors.js";
import type { ParsedArgs } from "./flags.js";

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

/** --virtio-ring split|packed: the virtqueue formats devices offer (packed also offers split). */
export function parseVirtioRing(args: ParsedArgs): RingFormat {
  const text = args.values.get("virtio-ring") ?? DEFAULT_VIRTIO_RING;
  if (text !== "split" && text !== "packed") {
    throw new UserError(`--virtio-ring ${text}: expected split or packed`);
  }
  return text;
}
