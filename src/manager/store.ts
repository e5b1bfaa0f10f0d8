/**
 * VM definitions on disk: one JSON file per VM in `<stateDir>/vms/`, so that a daemon that restarts
 * (or crashes) finds them again. Each file is replaced atomically (write a temporary file, fsync it,
 * rename it over the old one, fsync the directory), so a crash leaves the old definition or the new
 * one, never half of one. A file that cannot be read back is reported and left alone for a person to
 * look at, never fatal.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { type VmSpec, validateVmSpec } from "../vm/spec.js";

export interface VmRecord {
  id: string;
  spec: VmSpec;
  /** ISO 8601. */
  createdAt: string;
}

export interface DamagedRecord {
  file: string;
  reason: string;
}

const FORMAT = 1;

export class DefinitionStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "vms");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  save(record: VmRecord): void {
    const target = this.file(record.spec.name);
    const tmp = `${target}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, `${JSON.stringify({ format: FORMAT, ...record }, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    this.syncDir();
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
    this.syncDir();
  }

  /** Makes a rename or unlink durable: it lives in the directory's own data. */
  private syncDir(): void {
    const fd = openSync(this.dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Every definition that reads back whole, and every file that does not, with why. */
  load(): { records: VmRecord[]; damaged: DamagedRecord[] } {
    const records: VmRecord[] = [];
    const damaged: DamagedRecord[] = [];
    for (const entry of readdirSync(this.dir).sort()) {
      if (!entry.endsWith(".json")) continue;
      const file = join(this.dir, entry);
      try {
        const record = parseRecord(readFileSync(file, "utf8"));
        if (`${record.spec.name}.json` !== entry) throw new Error(`holds VM '${record.spec.name}'`);
        records.push(record);
      } catch (e) {
        damaged.push({ file, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return { records, damaged };
  }
}

function parseRecord(text: string): VmRecord {
  const data: unknown = JSON.parse(text);
  if (typeof data !== "object" || data === null) throw new Error("not a JSON object");
  const { format, id, spec, createdAt } = data as Record<string, unknown>;
  if (format !== FORMAT) throw new Error(`unknown format ${JSON.stringify(format)}`);
  if (typeof id !== "string" || id === "") throw new Error("no id");
  if (typeof createdAt !== "string") throw new Error("no createdAt");
  return { id, spec: validateVmSpec(spec), createdAt };
}
