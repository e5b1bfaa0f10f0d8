/**
 * Reserved memory (`memoryMode: "reserved"`): every page of guest RAM is touched when the VM is built,
 * so the host commits it then, not when the guest first writes it, and a VM that was admitted cannot
 * later fail for want of memory halfway through a boot. Each page's first byte is written back with its
 * own value: the content stays, the page becomes the process's.
 */
const PAGE = 4096;

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
