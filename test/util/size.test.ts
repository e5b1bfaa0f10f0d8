import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../../src/util/errors.js";
import { formatSize, parseSize } from "../../src/util/size.js";
import { describe, it } from "../support/test.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** b / 1024 written out exactly in decimal (it always terminates within 10 fraction digits). */
function exactKibibytes(bytes: number): string {
  const whole = Math.floor(bytes / KiB);
  const fraction = ((BigInt(bytes % KiB) * 10n ** 10n) / 1024n).toString().padStart(10, "0");
  return `${whole}.${fraction}`;
}

describe("parseSize", () => {
  const good: [string, number][] = [
    ["65536", 65536],
    ["0", 0],
    ["512B", 512],
    ["4096K", 4096 * KiB],
    ["4096k", 4096 * KiB],
    ["64M", 64 * MiB],
    ["64MB", 64 * MiB],
    ["512MiB", 512 * MiB],
    ["512mib", 512 * MiB],
    ["1G", GiB],
    ["1GiB", GiB],
    ["1 GiB", GiB],
    ["2T", 2 * TiB],
    ["1P", 1024 * TiB],
    ["1.5G", 1.5 * GiB],
    ["1.5 GiB", 1.5 * GiB],
    ["0.5K", 512],
    ["1.25M", 1.25 * MiB],
    ["2.000G", 2 * GiB],
    ["0.0009765625K", 1],
    ["007M", 7 * MiB],
    ["7P", 7 * 1024 * TiB],
    ["9007199254740991", Number.MAX_SAFE_INTEGER],
  ];
  for (const [text, bytes] of good) {
    it(`reads '${text}' as ${bytes}`, () => assert.equal(parseSize(text, "--memory"), bytes));
  }

  const bad: [string, string][] = [
    ["", "expected a number"],
    [" ", "expected a number"],
    ["-1M", "expected a number"],
    ["+1M", "expected a number"],
    ["M", "expected a number"],
    [".5G", "expected a number"],
    ["1.G", "expected a number"],
    ["64M ", "expected a number"],
    [" 64M", "expected a number"],
    ["64  M", "expected a number"],
    ["64MiBs", "expected a number"],
    ["64X", "expected a number"],
    ["64iB", "expected a number"],
    ["1e9", "expected a number"],
    ["0x1000", "expected a number"],
    ["1_000", "expected a number"],
    ["64 M\n", "expected a number"],
    ["1.5", "not a whole number of bytes"],
    ["1.1K", "not a whole number of bytes"],
    ["0.3G", "not a whole number of bytes"],
    ["1.0000000000000001K", "not a whole number of bytes"],
    ["8P", "too large"],
    ["9007199254740992", "too large"],
    ["99999999999999999999999T", "too large"],
  ];
  for (const [text, reason] of bad) {
    it(`rejects ${JSON.stringify(text)}: ${reason}`, () => {
      assert.throws(
        () => parseSize(text, "--memory"),
        (error: unknown) =>
          error instanceof UserError &&
          error.message.startsWith(`invalid size '${text}' for --memory: ${reason}`) &&
          !error.message.replace(text, "").includes("\n"),
      );
    });
  }

  it("names the option it was given", () => {
    assert.throws(() => parseSize("lots", "--ram"), /^UserError: invalid size 'lots' for --ram: /);
  });

  it("multiplies every integer by its binary unit", () => {
    const units: [string, number][] = [
      ["", 1],
      ["K", KiB],
      ["MiB", MiB],
      ["gb", GiB],
      ["T", TiB],
    ];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8191 }), fc.constantFrom(...units), (n, [suffix, unit]) => {
        assert.equal(parseSize(`${n}${suffix}`, "--memory"), n * unit);
      }),
    );
  });

  it("reads any exact fraction of a kibibyte", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (bytes) => {
        assert.equal(parseSize(`${exactKibibytes(bytes)}K`, "--memory"), bytes);
      }),
    );
  });

  it("returns a safe integer or throws UserError for any text", () => {
    const sizeish = fc.stringMatching(/^[0-9.]{0,20} ?[kKmMgGtTpPiIbBx]{0,4}$/);
    fc.assert(
      fc.property(fc.oneof(fc.string(), sizeish), (text) => {
        try {
          assert.ok(Number.isSafeInteger(parseSize(text, "--memory")));
        } catch (error) {
          assert.ok(error instanceof UserError, String(error));
        }
      }),
    );
  });
});

describe("formatSize", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1 KiB"],
    [1536, "1.5 KiB"],
    [64 * MiB, "64 MiB"],
    [1.5 * GiB, "1.5 GiB"],
    [GiB + 10 * MiB, "1.01 GiB"],
    [GiB - 1, "1 GiB"],
    [3 * TiB, "3 TiB"],
    [Number.MAX_SAFE_INTEGER, "8 PiB"],
  ];
  for (const [bytes, text] of cases) {
    it(`prints ${bytes} as '${text}'`, () => assert.equal(formatSize(bytes), text));
  }

  it("rejects negative and non-finite input", () => {
    assert.throws(() => formatSize(-1), RangeError);
    assert.throws(() => formatSize(Number.NaN), RangeError);
    assert.throws(() => formatSize(Number.POSITIVE_INFINITY), RangeError);
  });

  it("stays within half a hundredth of its unit and below 1024 of it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (bytes) => {
        const [number, unit] = formatSize(bytes).split(" ");
        const unitBytes = 1024 ** ["B", "KiB", "MiB", "GiB", "TiB", "PiB"].indexOf(unit as string);
        assert.ok(
          Math.abs(Number(number) * unitBytes - bytes) <= unitBytes * 0.005 + 1e-6,
          formatSize(bytes),
        );
        assert.ok(Number(number) < 1024 || unit === "PiB", formatSize(bytes));
      }),
    );
  });

  it("round-trips through parseSize when the printed value is exact", () => {
    // Quarter units below 1024 of them print with at most two decimals, so nothing is rounded away.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 1, max: 5 }), (quarters, unit) => {
        const bytes = (quarters * 1024 ** unit) / 4;
        fc.pre(bytes <= Number.MAX_SAFE_INTEGER);
        assert.equal(parseSize(formatSize(bytes), "--memory"), bytes);
      }),
    );
  });
});
