/**
 * The frame links of worker VMs' `switch:` NICs on Node's MessagePorts: the worker's end is the NIC's
 * backend; the daemon's end is bridged to a port of the daemon's switch. Either end closing (a VM that
 * ends, a worker that dies and takes its port with it) closes the other's link and whatever it is
 * bridged to, so a dead worker's switch port is unplugged.
 */
import type { MessagePort } from "node:worker_threads";
import type { NetBackend } from "../devices/virtio/net/backend.js";
import { FrameLink } from "../net/frame-link.js";
import type { VmStats } from "../vm/vm.js";

/** A FrameLink over `port`; `onClose` runs once, when either end closes. */
export function portLink(port: MessagePort, onClose?: () => void): FrameLink {
  const link = new FrameLink({
    post: (message, transfer) => port.postMessage(message, transfer),
    onClose() {
      port.close();
      onClose?.();
    },
  });
  port.on("message", (m: unknown) => link.receive(m));
  port.on("close", () => link.close());
  return link;
}

/** Connects the daemon's end of a link to `outer` (a switch port): frames either way, closes together. */
export function bridgeLink(port: MessagePort, outer: NetBackend): FrameLink {
  const link = portLink(port, () => outer.close());
  outer.onReceive((frame) => link.send(frame));
  link.onReceive((frame) => outer.send(frame));
  return link;
}

/**
 * `stats` with each linked NIC's drops at this end added under `key`: frames the link had no room for
 * because the other thread had not yet taken the earlier ones.
 */
export function withLinkDrops(
  stats: VmStats,
  links: ReadonlyMap<number, FrameLink>,
  key: "txLinkDropped" | "rxLinkDropped",
): VmStats {
  if (links.size === 0) return stats;
  return {
    ...stats,
    nics: stats.nics.map((n, i) => {
      const link = links.get(i);
      return link === undefined ? n : { ...n, counters: { ...n.counters, [key]: link.counters.dropped } };
    }),
  };
}
