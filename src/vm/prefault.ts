/**
 * Reserved memory (`memoryMode: "reserved"`): guest RAM is made the host's when the VM is built, not
 * when the guest first writes it, so a VM that was admitted cannot later fail for want of memory
 * halfway through a boot. Locked (mlock) where the host allows it, so it is also never swapped out;
 * else every page is touched: each page's first byte written back with its own value (the content
 * stays, the page becomes the process's).
 */
const PAGE = 4096;

/** How a VM's reserved memory is held (in its stats). */
export interface ReservedMemory {
  locked: boolean;
  /** Pages committed. */
  pages: number;
  /** Why it is not locked (the host's limit, no privilege, no way to lock here). */
  why?: string;
}

export function prefault(chunks: readonly { bytes: Uint8Array }[]): number {
  let pages = 0;
  for (const { bytes } of chunks) {
    for (let i = 0; i < bytes.length; i += PAGE) {
      bytes[i] = bytes[i] as number;
      pages++;
    }
  }
  return pages;
}

/** Locks every chunk with `lock`; pre-faults instead where it cannot (no `lock`, or it throws). */
export function reserveMemory(
  chunks: readonly { bytes: Uint8Array }[],
  lock: ((bytes: Uint8Array) => void) | undefined,
): ReservedMemory {
  const pages = chunks.reduce((n, c) => n + Math.ceil(c.bytes.length / PAGE), 0);
  if (lock === undefined) {
    prefault(chunks);
    return { locked: false, pages, why: "this host cannot lock memory" };
  }
  try {
    for (const { bytes } of chunks) lock(bytes);
    return { locked: true, pages };
  } catch (e) {
    // Pages locked before the failure stay locked until the VM's memory is freed; the rest are touched.
    prefault(chunks);
    return { locked: false, pages, why: (e as Error).message };
  }
}
