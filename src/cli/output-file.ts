import { closeSync, constants, openSync, statSync, writeFileSync } from "node:fs";
import { UserError } from "../util/errors.js";
import { describeFsError } from "./fs-errors.js";

/**
 * Writes a file the user asked for. A FIFO is fine when something reads it (`--dump-dtb >(dtc ...)`),
 * but opening one for writing with no reader would block forever, so that is asked first, without
 * blocking (ENXIO: no reader).
 */
export function writeOutputFile(path: string, bytes: Uint8Array, flag: string): void {
  let probe: number | null = null;
  try {
    let fifo = false;
    try {
      fifo = statSync(path).isFIFO();
    } catch {
      // Not there yet: writeFileSync creates it, or says why it cannot.
    }
    if (fifo) probe = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    writeFileSync(path, bytes);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENXIO" ? "a FIFO nobody reads" : describeFsError(e);
    throw new UserError(`${flag}: cannot write '${path}': ${why}`);
  } finally {
    if (probe !== null) closeSync(probe);
  }
}
