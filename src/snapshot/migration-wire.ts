/**
 * The live-migration wire format (Cloud Hypervisor's shape): frames of [type u8][length u32 LE][payload]
 * over one byte stream. The source sends START (a JSON header: magic, protocol version, the VmSpec, its
 * drives' sizes), then memory passes (PASS_BEGIN carrying a memory-file header, PASS_DATA chunks of a
 * memory-file payload: a page bitmap, those pages, a CRC-64; PASS_END), STATE (a snapshot state file) and
 * COMPLETE, or ABANDON with a reason at any point. The target answers START with ACCEPT or REFUSE and
 * COMPLETE with RUNNING (or REFUSE, whenever something fails on its side).
 */
import { UserError } from "../util/errors.js";

/** A source speaking a newer major protocol is refused; a newer minor only adds optional fields. */
export const MIGRATION_MAJOR = 1;
export const MIGRATION_MINOR = 0;
export const MIGRATION_MAGIC = "vireo-migration";

export enum FrameType {
  START = 1,
  PASS_BEGIN = 2,
  PASS_DATA = 3,
  PASS_END = 4,
  STATE = 5,
  COMPLETE = 6,
  ABANDON = 7,
  ACCEPT = 16,
  REFUSE = 17,
  RUNNING = 18,
}

export interface Frame {
  type: FrameType;
  payload: Uint8Array;
}

const HEADER_BYTES = 5;
/** Bounds what a peer can make the reader buffer: a state file or a 1 MiB run of pages fits. */
export const MAX_FRAME_BYTES = 64 << 20;

export interface StartHeader {
  magic: string;
  major: number;
  minor: number;
  spec: unknown;
  drives: { id: string; sizeBytes: number }[];
}

export function encodeFrame(type: FrameType, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length, true);
  out.set(payload, HEADER_BYTES);
  return out;
}

export function textFrame(type: FrameType, text: string): Uint8Array {
  return encodeFrame(type, new TextEncoder().encode(text));
}

export function frameText(frame: Frame): string {
  return new TextDecoder().decode(frame.payload);
}

export function encodeStart(spec: unknown, drives: StartHeader["drives"]): Uint8Array {
  const header: StartHeader = {
    magic: MIGRATION_MAGIC,
    major: MIGRATION_MAJOR,
    minor: MIGRATION_MINOR,
    spec,
    drives,
  };
  return textFrame(FrameType.START, JSON.stringify(header));
}

/** Checks a START frame; every problem is a UserError saying what the peer sent. */
export function decodeStart(frame: Frame): StartHeader {
  if (frame.type !== FrameType.START)
    throw new UserError(`migration: expected START, got frame type ${frame.type}`);
  let header: Partial<StartHeader>;
  try {
    header = JSON.parse(frameText(frame)) as Partial<StartHeader>;
  } catch {
    throw new UserError("migration: the START header is not JSON");
  }
  if (typeof header !== "object" || header === null || header.magic !== MIGRATION_MAGIC) {
    throw new UserError("migration: the peer does not speak the Vireo migration protocol");
  }
  if (typeof header.major !== "number" || header.major > MIGRATION_MAJOR || header.major < 1) {
    throw new UserError(
      `migration: protocol ${String(header.major)}.${String(header.minor)}; this Vireo speaks ${MIGRATION_MAJOR}.x`,
    );
  }
  if (!Array.isArray(header.drives)) throw new UserError("migration: the START header has no drive list");
  return header as StartHeader;
}

/** Cuts a byte stream into frames: push chunks of any size, take whole frames. */
export class FrameReader {
  /** Chunks of the frame being received, joined only once it is complete (a frame spans many). */
  private chunks: Uint8Array[] = [];
  private held = 0;
  /** Bytes needed before the next frame can be cut: its header, then header and payload. */
  private need = HEADER_BYTES;
  private readonly ready: Frame[] = [];

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.held += chunk.length;
    while (this.held >= this.need) {
      const joined =
        this.chunks.length === 1 ? (this.chunks[0] as Uint8Array) : concat(this.chunks, this.held);
      let at = 0;
      for (;;) {
        if (joined.length - at < HEADER_BYTES) {
          this.need = HEADER_BYTES;
          break;
        }
        const type = joined[at] as number;
        const length = new DataView(joined.buffer, joined.byteOffset + at + 1, 4).getUint32(0, true);
        if (!(type in FrameType)) throw new UserError(`migration: unknown frame type ${type}`);
        if (length > MAX_FRAME_BYTES)
          throw new UserError(`migration: a frame of ${length} bytes is too large`);
        if (joined.length - at - HEADER_BYTES < length) {
          this.need = HEADER_BYTES + length;
          break;
        }
        this.ready.push({ type, payload: joined.slice(at + HEADER_BYTES, at + HEADER_BYTES + length) });
        at += HEADER_BYTES + length;
      }
      const rest = joined.subarray(at);
      this.chunks = rest.length === 0 ? [] : [rest];
      this.held = rest.length;
      if (this.held < this.need) break;
    }
  }

  take(): Frame | undefined {
    return this.ready.shift();
  }

  /** Bytes of an incomplete frame held: at the end of the stream, a sign it was cut. */
  get pending(): number {
    return this.held;
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Frames from a stream, one at a time: `next()` resolves with the next frame, or null once the stream
 * ended (a cut frame at the end is an error). Transports feed it with push/end/fail.
 */
export class FrameQueue {
  private readonly reader = new FrameReader();
  private waiting: { resolve: (f: Frame | null) => void; reject: (e: Error) => void } | null = null;
  private ended = false;
  private error: Error | null = null;

  push(chunk: Uint8Array): void {
    try {
      this.reader.push(chunk);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.deliver();
  }

  end(): void {
    this.ended = true;
    if (this.reader.pending > 0) this.error ??= new UserError("migration: the stream ended inside a frame");
    this.deliver();
  }

  fail(error: Error): void {
    this.error ??= error;
    this.deliver();
  }

  /** A frame already received, if any, without waiting (the source looks for an early REFUSE). */
  poll(): Frame | null {
    return this.waiting === null ? (this.reader.take() ?? null) : null;
  }

  next(): Promise<Frame | null> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }

  private deliver(): void {
    const w = this.waiting;
    if (w === null) return;
    const frame = this.reader.take();
    if (frame !== undefined) {
      this.waiting = null;
      w.resolve(frame);
    } else if (this.error !== null) {
      this.waiting = null;
      w.reject(this.error);
    } else if (this.ended) {
      this.waiting = null;
      w.resolve(null);
    }
  }
}
