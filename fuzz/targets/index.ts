/** Every in-process fuzz target, in the order `npm run fuzz` runs them (the guest target is in guest.ts). */
import { defineTarget, type Target } from "../target.js";
import { apiTarget } from "./api.js";
import { balloonModel, blkModel, consoleModel, netModel, rngModel, vsockModel } from "./devices.js";
import { cpioTarget, elfTarget, fdtTarget, imageTarget } from "./parsers.js";
import { clintTarget, plicTarget, rtcTarget, uartTarget } from "./registers.js";
import { type DeviceModel, type RingScenario, ringScenario, runRingScenario } from "./rings.js";
import { boardSnapshotTargets, virtioSnapshotTargets } from "./snapshots.js";
import { transportTarget } from "./transport.js";

function deviceTarget(name: string, model: DeviceModel, queues: number): Target<unknown> {
  return defineTarget({
    name: `virtio-${name}`,
    about: `virtio-${name}: valid and mutated requests on split/packed rings, host events, resets`,
    input: ringScenario(model, queues),
    run: (sc: RingScenario) => runRingScenario(model, sc),
  });
}

export const targets: Target<unknown>[] = [
  deviceTarget("blk", blkModel, 1),
  deviceTarget("net", netModel, 2),
  deviceTarget("rng", rngModel, 1),
  deviceTarget("console", consoleModel, 2),
  deviceTarget("balloon", balloonModel, 3),
  deviceTarget("vsock", vsockModel, 3),
  transportTarget,
  uartTarget,
  plicTarget,
  clintTarget,
  rtcTarget,
  fdtTarget,
  elfTarget,
  imageTarget,
  cpioTarget,
  ...virtioSnapshotTargets,
  ...boardSnapshotTargets,
  apiTarget,
];
