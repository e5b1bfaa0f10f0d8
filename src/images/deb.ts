/**
 * Takes single files out of a .deb: `dpkg-deb --fsys-tarfile` decompresses the data archive and a small
 * tar reader here picks the wanted members from the stream, stopping dpkg-deb as soon as it has them (a
 * kernel's boot/ files come before its ~100 MB of modules, so this is much faster than `dpkg-deb -x`).
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { UserError } from "../util/errors.js";
import { NEEDS_DPKG } from "./apt.js";

export interface WantedMember {
  /** Accepted member names, without the leading "./" (e.g. ["usr/bin/busybox", "bin/busybox"]). */
  names: string[];
  /** Where to write its contents. */
  dest: string;
  /** File mode for the written file (default 0o644). */
  mode?: number;
}

const BLOCK = 512;

function field(header: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && header[end] !== 0) end++;
  return Buffer.from(header.subarray(offset, end)).toString("utf8");
}

function octal(header: Uint8Array, offset: number, length: number): number {
  if (((header[offset] as number) & 0x80) !== 0) {
    // GNU base-256 for big sizes
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (header[i] as number);
    return value;
  }
  const text = field(header, offset, length).trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

export function normaliseMemberName(name: string): string {
  return name.replace(/^\.\//, "").replace(/^\/+/, "");
}

/** Values of a pax extended header ("%d key=value\n" records). */
function paxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const text = Buffer.from(data).toString("utf8");
  let pos = 0;
  while (pos < text.length) {
    const space = text.indexOf(" ", pos);
    if (space < 0) break;
    const length = Number.parseInt(text.slice(pos, space), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = text.slice(space + 1, pos + length - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return out;
}

/**
 * A push parser for a tar stream (ustar, GNU long names, pax headers). `onFile` gets each regular file's
 * normalised name and contents when `want(name)` is true; the others are skipped without buffering.
 */
export class TarReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private state: "header" | "data" = "header";
  private dataSize = 0;
  private paddedSize = 0;
  private currentName = "";
  private currentType = "";
  private keep = false;
  private longName: string | undefined;
  private paxPath: string | undefined;
  private longLink: string | undefined;
  private paxLink: string | undefined;
  ended = false;

  /** `onLink`, if given, gets each symbolic link `want` accepts, with its target. */
  constructor(
    private readonly want: (name: string) => boolean,
    private readonly onFile: (name: string, data: Uint8Array) => void,
    private readonly onLink?: (name: string, target: string) => void,
  ) {}

  push(chunk: Uint8Array): void {
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    for (;;) {
      if (this.ended) return;
      if (this.state === "header") {
        if (this.pendingBytes < BLOCK) return;
        this.header(this.take(BLOCK));
      } else {
        // Skipped members are dropped chunk by chunk; kept ones are gathered whole.
        if (!this.keep && this.pendingBytes > 0 && this.pendingBytes < this.paddedSize) {
          this.paddedSize -= this.pendingBytes;
          this.take(this.pendingBytes);
          return;
        }
        if (this.pendingBytes < this.paddedSize) return;
        const data = this.take(this.paddedSize).subarray(0, this.dataSize);
        this.state = "header";
        this.finishMember(data);
      }
    }
  }

  private take(n: number): Buffer {
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return head;
  }

  private header(block: Uint8Array): void {
    if (block.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const prefix = field(block, 345, 155);
    const rawName = field(block, 0, 100);
    const type = String.fromCharCode(block[156] || 0x30);
    const name = this.paxPath ?? this.longName ?? (prefix !== "" ? `${prefix}/${rawName}` : rawName);
    const link = this.paxLink ?? this.longLink ?? field(block, 157, 100);
    if (type !== "x" && type !== "g" && type !== "L" && type !== "K") {
      this.paxPath = undefined;
      this.longName = undefined;
      this.paxLink = undefined;
      this.longLink = undefined;
    }
    this.currentName = normaliseMemberName(name);
    this.currentType = type;
    this.dataSize = octal(block, 124, 12);
    this.paddedSize = Math.ceil(this.dataSize / BLOCK) * BLOCK;
    const regular = type === "0" || type === "\0" || type === "7";
    if (type === "2" && this.onLink !== undefined && this.want(this.currentName))
      this.onLink(this.currentName, link);
    this.keep = type === "x" || type === "L" || type === "K" || (regular && this.want(this.currentName));
    this.state = "data";
    if (this.paddedSize === 0) {
      this.state = "header";
      this.finishMember(new Uint8Array(0));
    }
  }

  private finishMember(data: Uint8Array): void {
    if (this.currentType === "L") this.longName = field(data, 0, data.length);
    else if (this.currentType === "K") this.longLink = field(data, 0, data.length);
    else if (this.currentType === "x") {
      const records = paxRecords(data);
      this.paxPath = records.get("path");
      this.paxLink = records.get("linkpath");
    } else if (this.keep) this.onFile(this.currentName, new Uint8Array(data));
  }
}

/**
 * Streams the data archive of `deb` through a TarReader: `onFile` gets each regular file `want` accepts
 * (name without "./"); returning true from `onFile` stops the scan early (dpkg-deb is told to stop).
 * Resolves with whether the scan was stopped early (false: the whole archive was read).
 */
export function scanDeb(
  deb: string,
  want: (name: string) => boolean,
  onFile: (name: string, data: Uint8Array) => boolean | undefined,
  onLink?: (name: string, target: string) => void,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const child = spawn("dpkg-deb", ["--fsys-tarfile", deb], { stdio: ["ignore", "pipe", "pipe"] });
    const errors: Buffer[] = [];
    const finish = (error: Error | undefined, stopped: boolean) => {
      if (settled) return;
      settled = true;
      // Closing our end stops dpkg-deb's decompressor child too (SIGPIPE), which a kill would not reach.
      child.stdout.destroy();
      if (error !== undefined) reject(error);
      else resolve(stopped);
    };
    const reader = new TarReader(
      want,
      (name, data) => {
        if (settled) return;
        let stop: boolean | undefined;
        try {
          stop = onFile(name, data);
        } catch (e) {
          child.kill();
          finish(e as Error, true);
          return;
        }
        if (stop === true) {
          child.kill();
          finish(undefined, true);
        }
      },
      onLink,
    );
    child.stdout.on("data", (chunk: Buffer) => {
      if (settled) return;
      try {
        reader.push(chunk);
      } catch (e) {
        child.kill();
        finish(e as Error, true);
      }
    });
    child.stderr.on("data", (b: Buffer) => errors.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      finish(e.code === "ENOENT" ? new UserError(NEEDS_DPKG) : e, true);
    });
    child.on("close", (code) => {
      if (settled) return;
      if (code !== 0) {
        const message = Buffer.concat(errors).toString("utf8").trim().split("\n")[0] ?? "";
        finish(new UserError(`dpkg-deb --fsys-tarfile ${deb} failed: ${message}`), false);
        return;
      }
      finish(undefined, false);
    });
  });
}

/**
 * Writes the wanted members of `deb` to their destinations; a member missing from the package is a
 * UserError naming the package file.
 */
export async function extractFromDeb(deb: string, wanted: readonly WantedMember[]): Promise<void> {
  const remaining = new Set(wanted);
  await scanDeb(
    deb,
    (name) => [...remaining].some((w) => w.names.includes(name)),
    (name, data) => {
      const member = [...remaining].find((w) => w.names.includes(name));
      if (member === undefined) return false;
      remaining.delete(member);
      writeFileSync(member.dest, data, { mode: member.mode ?? 0o644 });
      return remaining.size === 0;
    },
  );
  if (remaining.size > 0) {
    const missing = [...remaining].map((w) => w.names.join(" or "));
    throw new UserError(`${deb} has no ${missing.join(", ")}`);
  }
}
