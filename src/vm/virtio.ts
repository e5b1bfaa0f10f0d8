/**
 * The spec's virtio devices on either board, on the host's backends, in the order the guest probes
 * them: the drives (the first is /dev/vda), entropy, console, balloon, the NICs, vsock, and the keyboard
 * last (so that adding it renamed no other device).
 */
import type { GuestMemory } from "../devices/device.js";
import { VirtioBalloon } from "../devices/virtio/balloon/virtio-balloon.js";
import { VirtioBlk } from "../devices/virtio/blk/virtio-blk.js";
import { VirtioConsole } from "../devices/virtio/console/virtio-console.js";
import type { VirtioDevice } from "../devices/virtio/device.js";
import { VirtioInput } from "../devices/virtio/input/virtio-input.js";
import type { NetBackend } from "../devices/virtio/net/backend.js";
import { VirtioNet } from "../devices/virtio/net/virtio-net.js";
import { VirtioRng } from "../devices/virtio/rng/virtio-rng.js";
import { VirtioVsock } from "../devices/virtio/vsock/virtio-vsock.js";
import { defaultMac, parseMac } from "../net/mac.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives, VmHost } from "./host.js";
import { hasKeyboard, type VmSpec } from "./spec.js";
import type { VmDevice } from "./vm.js";

/** What both boards offer for virtio devices: their slots and the guest RAM the devices see. */
export interface VirtioBoard {
  readonly virtio: { attach(device: VirtioDevice): unknown; readonly memory: GuestMemory };
}

export interface VirtioSetup {
  console: VirtioConsole | null;
  nics: VirtioNet[];
  vsock: VirtioVsock | null;
  /** The virtio keyboard that carries stop()'s Ctrl-Alt-Del (see hasKeyboard). */
  keyboard: VirtioInput | null;
  /** In attach order, named virtio0, virtio1... as the slots are filled. */
  devices: VmDevice[];
  close(): Promise<void>;
}

/** Attaches the spec's devices; on a failure, whatever was set up is closed again (the drives too). */
export async function attachVirtio(
  board: VirtioBoard,
  spec: VmSpec,
  host: VmHost,
  drives: OpenedDrives,
): Promise<VirtioSetup> {
  const devices: VmDevice[] = [];
  const netBackends: NetBackend[] = [];
  const setup: VirtioSetup = {
    console: null,
    nics: [],
    vsock: null,
    keyboard: null,
    devices,
    close: async () => {
      for (const b of netBackends) b.close();
      await setup.vsock?.close();
      await drives.close();
    },
  };
  const attach = <T extends VirtioDevice>(device: T): T => {
    board.virtio.attach(device);
    devices.push({ name: `virtio${devices.length}`, kind: device.name, device });
    return device;
  };
  try {
    spec.drives.forEach((d, i) => {
      attach(new VirtioBlk(drives.backends[i] as (typeof drives.backends)[number], { serial: d.id }));
    });
    if (spec.rng) attach(new VirtioRng(host.entropy));
    if (spec.console) setup.console = attach(new VirtioConsole(host.console, host.consoleSize ?? {}));
    if (spec.balloon !== undefined) attachBalloon(board, host, spec.balloon.targetBytes, attach);
    spec.nics.forEach((nic, i) => {
      let backend: NetBackend;
      try {
        backend = host.netBackend(nic.backend);
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`${nic.backend}: ${(e as Error).message}`);
      }
      netBackends.push(backend);
      const mac = nic.mac === undefined ? defaultMac(0, i) : (parseMac(nic.mac) as Uint8Array);
      setup.nics.push(attach(new VirtioNet(backend, { mac })));
    });
    if (spec.vsock !== undefined) {
      const { cid, uds } = spec.vsock;
      const backend = uds === undefined ? null : await host.vsockBackend(uds);
      setup.vsock = new VirtioVsock({ guestCid: cid, backend });
      attach(setup.vsock);
    }
    if (hasKeyboard(spec)) setup.keyboard = attach(new VirtioInput());
  } catch (e) {
    await setup.close();
    throw e;
  }
  return setup;
}

function attachBalloon(
  board: VirtioBoard,
  host: VmHost,
  target: number | undefined,
  attach: (device: VirtioBalloon) => VirtioBalloon,
): void {
  const balloon = new VirtioBalloon(host.pageReclaimer(board.virtio.memory.bytes));
  if (target !== undefined) {
    // Once, when the guest's driver first sets DRIVER_OK: a configuration change it acts on at once.
    balloon.onActivate = () => {
      balloon.onActivate = null;
      balloon.setTargetBytes(target);
    };
  }
  attach(balloon);
}
