/**
 * Snapshots as files in a directory (state.vsnap, memory.vsnap), the memory payload through node:zlib
 * when compressed; both written and read as streams, so no buffer ever holds the whole of RAM.
 */
import { createReadStream, createWriteStream, mkdirSync, readFileSync, renameSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { createDeflate, createInflate } from "node:zlib";
import { MEMORY_HEADER_BYTES } from "../snapshot/memory-file.js";
import {
  isSingleFile,
  MEMORY_FILE,
  SINGLE_FILE_MAGIC,
  type SnapshotRead,
  type SnapshotStore,
  type SnapshotWrite,
  STATE_FILE,
} from "../snapshot/store.js";
import { UserError } from "../util/errors.js";
import { describeFsError } from "./fs-errors.js";

async function writeAll(out: Writable, chunks: Iterable<Uint8Array>): Promise<void> {
  for (const chunk of chunks) {
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
}

/** The single file's prefix: magic, the state file's length, the state file. */
function singleFilePrefix(state: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(12 + state.length);
  prefix.set(new TextEncoder().encode(SINGLE_FILE_MAGIC));
  new DataView(prefix.buffer).setUint32(8, state.length, true);
  prefix.set(state, 12);
  return prefix;
}

/** Writes the memory file (header, then the payload, deflated if asked) after whatever `file` holds. */
async function writeMemory(file: Writable, files: SnapshotWrite): Promise<void> {
  file.write(files.memoryHeader);
  if (files.compression === "zlib") {
    const deflate = createDeflate({ level: 1 });
    deflate.pipe(file);
    await writeAll(deflate, files.memoryPayload);
    deflate.end();
  } else {
    await writeAll(file, files.memoryPayload);
    file.end();
  }
  await finished(file);
}

export function nodeSnapshotStore(): SnapshotStore {
  return {
    async write(location: string, files: SnapshotWrite): Promise<void> {
      if (isSingleFile(location)) {
        try {
          mkdirSync(dirname(location), { recursive: true });
          const file = createWriteStream(`${location}.tmp`);
          file.write(singleFilePrefix(files.state));
          await writeMemory(file, files);
          renameSync(`${location}.tmp`, location);
        } catch (e) {
          throw new UserError(`${location}: cannot write the snapshot: ${describeFsError(e)}`);
        }
        return;
      }
      try {
        mkdirSync(location, { recursive: true });
        // Written under temporary names and renamed last: a crash midway leaves no half snapshot that loads.
        const memoryPath = join(location, MEMORY_FILE);
        await writeMemory(createWriteStream(`${memoryPath}.tmp`), files);
        const state = await open(join(location, `${STATE_FILE}.tmp`), "w");
        await state.writeFile(files.state);
        await state.sync();
        await state.close();
        renameSync(`${memoryPath}.tmp`, memoryPath);
        renameSync(join(location, `${STATE_FILE}.tmp`), join(location, STATE_FILE));
      } catch (e) {
        throw new UserError(`${location}: cannot write the snapshot: ${describeFsError(e)}`);
      }
    },

    async read(location: string, compression): Promise<SnapshotRead> {
      const single = isSingleFile(location);
      const memoryPath = single ? location : join(location, MEMORY_FILE);
      let state: Uint8Array;
      let memoryHeader: Uint8Array;
      /** Where the memory file starts in memoryPath. */
      let memoryAt = 0;
      try {
        const fd = await open(memoryPath, "r");
        try {
          if (single) {
            const prefix = Buffer.alloc(12);
            const got = (await fd.read(prefix, 0, 12, 0)).bytesRead;
            if (got < 12 || prefix.subarray(0, 8).toString("latin1") !== SINGLE_FILE_MAGIC) {
              throw new UserError(
                `${location}: not a single-file Vireo snapshot (no ${SINGLE_FILE_MAGIC} magic)`,
              );
            }
            const length = prefix.readUInt32LE(8);
            const size = (await fd.stat()).size;
            if (12 + length > size) throw new UserError(`${location}: truncated (the state file is cut)`);
            state = Buffer.alloc(length);
            await fd.read(state, 0, length, 12);
            memoryAt = 12 + length;
          } else state = readFileSync(join(location, STATE_FILE));
          const header = Buffer.alloc(MEMORY_HEADER_BYTES);
          const { bytesRead } = await fd.read(header, 0, MEMORY_HEADER_BYTES, memoryAt);
          memoryHeader = header.subarray(0, bytesRead);
        } finally {
          await fd.close();
        }
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`${location}: cannot read the snapshot: ${describeFsError(e)}`);
      }
      const zlib = compression(memoryHeader) === "zlib";
      async function* payload(): AsyncGenerator<Uint8Array> {
        const raw = createReadStream(memoryPath, {
          start: memoryAt + MEMORY_HEADER_BYTES,
          highWaterMark: 1 << 20,
        });
        let stream: NodeJS.ReadableStream = raw;
        if (zlib) {
          const inflate = createInflate();
          // pipe() does not pass a read error on: unhandled, it would end the process.
          raw.on("error", (e) => inflate.destroy(e));
          stream = raw.pipe(inflate);
        }
        try {
          for await (const chunk of stream) yield chunk as Uint8Array;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR) mean nothing to a user; its message says what broke.
          if (code?.startsWith("Z_") === true) {
            throw new UserError(
              `${memoryPath}: the compressed memory image is damaged (${(e as Error).message})`,
            );
          }
          throw new UserError(`${memoryPath}: ${describeFsError(e)}`);
        } finally {
          raw.destroy();
        }
      }
      return { state, memoryHeader, memoryPayload: payload() };
    },
  };
}
