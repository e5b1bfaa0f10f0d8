/**
 * Snapshots as files in a directory (state.vsnap, memory.vsnap), the memory payload through node:zlib
 * when compressed; both written and read as streams, so no buffer ever holds the whole of RAM.
 */
import { createReadStream, createWriteStream, mkdirSync, readFileSync, renameSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { createDeflate, createInflate } from "node:zlib";
import { MEMORY_HEADER_BYTES } from "../snapshot/memory-file.js";
import {
  MEMORY_FILE,
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

export function nodeSnapshotStore(): SnapshotStore {
  return {
    async write(location: string, files: SnapshotWrite): Promise<void> {
      try {
        mkdirSync(location, { recursive: true });
        // Written under temporary names and renamed last: a crash midway leaves no half snapshot that loads.
        const memoryPath = join(location, MEMORY_FILE);
        const file = createWriteStream(`${memoryPath}.tmp`);
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
      const memoryPath = join(location, MEMORY_FILE);
      let state: Uint8Array;
      let memoryHeader: Uint8Array;
      try {
        state = readFileSync(join(location, STATE_FILE));
        const fd = await open(memoryPath, "r");
        const header = Buffer.alloc(MEMORY_HEADER_BYTES);
        const { bytesRead } = await fd.read(header, 0, MEMORY_HEADER_BYTES, 0);
        await fd.close();
        memoryHeader = header.subarray(0, bytesRead);
      } catch (e) {
        throw new UserError(`${location}: cannot read the snapshot: ${describeFsError(e)}`);
      }
      const zlib = compression(memoryHeader) === "zlib";
      async function* payload(): AsyncGenerator<Uint8Array> {
        const raw = createReadStream(memoryPath, { start: MEMORY_HEADER_BYTES, highWaterMark: 1 << 20 });
        const stream = zlib ? raw.pipe(createInflate()) : raw;
        try {
          for await (const chunk of stream) yield chunk as Uint8Array;
        } catch (e) {
          throw new UserError(`${memoryPath}: ${describeFsError(e)}`);
        } finally {
          raw.destroy();
        }
      }
      return { state, memoryHeader, memoryPayload: payload() };
    },
  };
}
