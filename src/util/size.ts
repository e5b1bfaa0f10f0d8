/**
 * Memory sizes as users type them ("512M", "1.5GiB") and as we print them ("1.5 GiB").
 *
 * Every multiple is binary: K, KB and KiB all mean 1024, as in QEMU and most VM tools. A fraction is
 * accepted only when it comes to a whole number of bytes (1.5G yes, 1.1K no), checked exactly.
 */
import { UserError } from "./errors.js";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Digits, optional fraction, optional space, optional unit: K/M/G/T/P with optional B or iB, or just B. */
const SIZE_PATTERN = /^(\d+)(?:\.(\d+))? ?(?:([kmgtp])(?:i?b)?|b)?$/i;

/** Up to 15 digits are an exact integer in a double; nobody types a longer fraction of a size. */
const MAX_FRACTION_DIGITS = 15;

export function parseSize(text: string, what: string): number {
  const fail = (why: string): never => {
    throw new UserError(`invalid size '${text}' for ${what}: ${why}`);
  };
  const match = SIZE_PATTERN.exec(text);
  if (!match) {
    return fail("expected a number of bytes with an optional K, M, G, T or P suffix, e.g. 512M or 2GiB");
  }
  const [, whole = "", fractionDigits = "", unit = ""] = match;
  const multiple = unit === "" ? 1 : 1024 ** ("kmgtp".indexOf(unit.toLowerCase()) + 1);
  const fraction = fractionBytes(fractionDigits.replace(/0+$/, ""), multiple);
  if (fraction === undefined) return fail("not a whole number of bytes");
  const bytes = Number(whole) * multiple + fraction;
  // Exact below 2^53: a product with a power of two is exact, and rounding cannot push a larger sum down.
  if (!Number.isSafeInteger(bytes)) return fail("too large (the limit is 2^53 - 1 bytes)");
  return bytes;
}

/**
 * Bytes in 0.<digits> × multiple, or undefined when that is not a whole number. With F the digits as an
 * integer and d their count, that is F / 5^d × multiple / 2^d: F must be divisible by 5^d, and the rest
 * only scales by powers of two, which floating point does exactly.
 */
function fractionBytes(digits: string, multiple: number): number | undefined {
  if (digits === "") return 0;
  if (digits.length > MAX_FRACTION_DIGITS) return undefined;
  const numerator = Number(digits);
  const power = 5 ** digits.length;
  if (numerator % power !== 0) return undefined;
  const bytes = ((numerator / power) * multiple) / 2 ** digits.length;
  return Number.isInteger(bytes) ? bytes : undefined;
}

/** The largest unit that keeps the number at least 1, with up to two decimals: "1.5 GiB", "512 B". */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`not a size: ${bytes}`);
  let unit = 0;
  while (unit < UNITS.length - 1 && bytes >= 1024 ** (unit + 1)) unit++;
  let value = Math.round((bytes / 1024 ** unit) * 100) / 100;
  // Rounding can reach the next unit (1023.999 MiB); say "1 GiB" rather than "1024 MiB".
  if (value >= 1024 && unit < UNITS.length - 1) {
    unit++;
    value = Math.round((bytes / 1024 ** unit) * 100) / 100;
  }
  return `${value} ${UNITS[unit]}`;
}
