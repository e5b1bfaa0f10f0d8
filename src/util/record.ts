/**
 * Reading a state record (a snapshot section) that came from a file: every field is checked before it
 * is used, and a bad one is a TypeError naming the record and the field, never a crash later on.
 */
export class RecordReader {
  private readonly fields: Record<string, unknown>;

  constructor(
    private readonly what: string,
    value: unknown,
    version: number,
  ) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypeError(`${what} snapshot: not an object`);
    }
    this.fields = value as Record<string, unknown>;
    if (this.fields.version !== version) {
      throw new TypeError(`${what} snapshot: unsupported version ${String(this.fields.version)}`);
    }
  }

  fail(key: string, must: string): never {
    throw new TypeError(`${this.what} snapshot: ${key} must be ${must}`);
  }

  /** An integer in [min, max]. */
  int(key: string, min: number, max: number): number {
    const v = this.fields[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, `an integer ${min}..${max}`);
    }
    return v;
  }

  i32(key: string): number {
    return this.int(key, -(2 ** 31), 2 ** 31 - 1);
  }

  u32(key: string): number {
    return this.int(key, 0, 2 ** 32 - 1);
  }

  /** A non-negative integer JavaScript represents exactly. */
  count(key: string): number {
    return this.int(key, 0, Number.MAX_SAFE_INTEGER);
  }

  bool(key: string): boolean {
    const v = this.fields[key];
    if (typeof v !== "boolean") this.fail(key, "a boolean");
    return v;
  }

  /** `length` integers in [min, max]. */
  ints(key: string, length: number, min: number, max: number): number[] {
    const v = this.fields[key];
    if (
      !Array.isArray(v) ||
      v.length !== length ||
      !v.every((x) => typeof x === "number" && Number.isInteger(x) && x >= min && x <= max)
    ) {
      this.fail(key, `${length} integers ${min}..${max}`);
    }
    return v as number[];
  }

  /** Up to `maxLength` integers in [min, max]. */
  list(key: string, maxLength: number, min: number, max: number): number[] {
    const v = this.fields[key];
    if (!Array.isArray(v) || v.length > maxLength) this.fail(key, `a list of at most ${maxLength} integers`);
    return this.ints(key, v.length, min, max);
  }

  i32s(key: string, length: number): number[] {
    return this.ints(key, length, -(2 ** 31), 2 ** 31 - 1);
  }

  /** A field that may be null (absent counts as null: an older minor version did not write it). */
  optional<T>(key: string, read: (value: unknown) => T): T | null {
    const v = this.fields[key];
    return v === undefined || v === null ? null : read(v);
  }
}
