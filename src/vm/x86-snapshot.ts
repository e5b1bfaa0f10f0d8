/**
 * Snapshot and restore of an x86_64 (KVM) VM: the VM-wide KVM state (PICs, IOAPIC, PIT, kvmclock), the
 * board's UART and i8042, the virtio-mmio transports with their devices, and every vCPU's KVM state (read
 * by the vCPU threads of the paused engine) into sections of a state file; guest RAM from its mapping into
 * a memory file of its non-zero pages. Restore fills a board freshly built from the stored spec (CPUID
 * and boot MSRs set up as for a boot, nothing loaded): RAM, then every record is checked before any is
 * written, then the VM state and the devices; the vCPU states go to the engine, whose threads write them
 * before their first KVM_RUN.
 *
 * The kvmclock is saved as it was at the pause; restore sets it that much later as the host's clock moved
 * on since, so guest time continues from the host clock as on riscv64: the guest sees its clocks jump by
 * the time it spent saved, as after a suspend.
 */
import type { KvmEngine } from "../engines/kvm/engine.js";
import { kvmVmFromRecord, kvmVmRecord, vcpuFromRecord, vcpuRecord } from "../hypervisor/kvm/state-records.js";
import {
  readVmState,
  type VcpuStateBytes,
  vcpuStateCaps,
  writeVmState,
} from "../hypervisor/kvm/vcpu-state.js";
import type { X86MicroVm } from "../machine/x86-microvm/board.js";
import { type Compression, MemoryDecoder } from "../snapshot/memory-file.js";
import type { SnapshotBody, SnapshotSection } from "../snapshot/state-file.js";
import type { SnapshotWrite } from "../snapshot/store.js";
import { UserError } from "../util/errors.js";
import type { OpenedDrives } from "./host.js";
import type { RestoreSource } from "./riscv-snapshot.js";
import { type SnapshotInfo, snapshotFiles, stateBodyOf } from "./snapshot-files.js";
import type { VmSpec } from "./spec.js";
import type { VirtioSetup } from "./virtio.js";

interface Restorable {
  snapshot(): unknown;
  restore(state: unknown): void;
}

/** The board's devices with state, in restore order (the irqchip, restored first, is not one of them). */
function devices(board: X86MicroVm): { name: string; kind: string; part: Restorable }[] {
  const list: { name: string; kind: string; part: Restorable }[] = [
    { name: "uart0", kind: "uart16550", part: board.uart },
    { name: "i8042", kind: "i8042", part: board.i8042 },
  ];
  for (const slot of board.virtio.used()) {
    const transport = board.virtio.at(slot.index);
    if (transport !== null) list.push({ name: `virtio${slot.index}`, kind: "virtio-mmio", part: transport });
  }
  return list;
}

/** Guest RAM as one view: the low region. RAM above the 3 GiB hole would need a second memory range. */
export function ramView(board: X86MicroVm): Uint8Array {
  if (board.ram.regions.length !== 1 || board.ram.chunks.length !== 1) {
    throw new UserError("snapshots of x86_64 VMs with more than 3 GiB of memory are not supported yet");
  }
  return (board.ram.chunks[0] as { bytes: Uint8Array }).bytes;
}

/** The state of a paused VM (KVM state, devices, vCPUs), as a snapshot's state file holds it. */
export function stateBodyX86(
  board: X86MicroVm,
  engine: KvmEngine,
  spec: VmSpec,
  drives: OpenedDrives,
): SnapshotBody {
  const clock = engine.clockAtPause();
  // Without the clock at the pause, a restored guest's clock would jump by however long it was saved.
  if (clock === null) throw new UserError("cannot snapshot: KVM_GET_CLOCK failed when the VM paused");
  let vcpus: VcpuStateBytes[];
  let vm: ReturnType<typeof readVmState>;
  try {
    vcpus = engine.readVcpuStates(vcpuStateCaps(board.kvm));
    vm = { ...readVmState(board.vm), clock };
  } catch (e) {
    // A piece this host's KVM will not give cannot be restored either: no snapshot rather than a bad one.
    throw new UserError(`cannot snapshot: ${(e as Error).message}`);
  }
  const sections: SnapshotSection[] = [{ name: "kvm", kind: "kvm-vm", version: 1, state: kvmVmRecord(vm) }];
  for (const { name, kind, part } of devices(board)) {
    const state = part.snapshot();
    sections.push({ name, kind, version: (state as { version: number }).version, state });
  }
  vcpus.forEach((v, i) => {
    sections.push({ name: `vcpu${i}`, kind: "kvm-vcpu", version: 1, state: vcpuRecord(v) });
  });
  return stateBodyOf(spec, drives, sections);
}

/** The files of a snapshot of a paused VM; the memory payload reads RAM as it is written. */
export function snapshotX86(
  board: X86MicroVm,
  engine: KvmEngine,
  spec: VmSpec,
  drives: OpenedDrives,
  compression: Compression,
): { files: SnapshotWrite; info: SnapshotInfo } {
  const body = stateBodyX86(board, engine, spec, drives);
  return snapshotFiles("x86_64", body, { bytes: ramView(board), base: 0 }, compression);
}

interface Sections {
  what: string;
  body: SnapshotBody;
}

function section(source: Sections, name: string, kind: string): SnapshotSection {
  const s = source.body.sections.find((x) => x.name === name);
  if (s === undefined) throw new UserError(`${source.what}: no section ${name}`);
  if (s.kind !== kind)
    throw new UserError(`${source.what}: section ${name} is a ${s.kind}, expected ${kind}`);
  return s;
}

/** Runs `f` on a record from the file: whatever its check throws is that file's fault. */
function checked<T>(source: Sections, name: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UserError(`${source.what}: section ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Fills a board built from the snapshot's spec (devices attached, nothing loaded) and returns the vCPU
 * states for the engine. A malformed section or memory image is a UserError naming it, raised before
 * any KVM state is written.
 */
export async function restoreX86(
  board: X86MicroVm,
  virtio: VirtioSetup,
  source: RestoreSource,
): Promise<VcpuStateBytes[]> {
  const { what } = source;
  const apply = checkSectionsX86(board, source.body, what);
  if (source.memoryHeader.base !== 0) throw new UserError(`${what}: RAM at another address`);
  const decoder = new MemoryDecoder(ramView(board), source.memoryHeader, what);
  for await (const chunk of source.memoryPayload) decoder.push(chunk);
  decoder.finish();
  return apply(virtio, source.clone === true);
}

/**
 * Checks every section of `body` for this board (a UserError naming the first bad one) and returns what
 * writes them: the VM's KVM state and the devices at once, the vCPU states returned for the engine.
 */
export function checkSectionsX86(
  board: X86MicroVm,
  body: SnapshotBody,
  what: string,
): (virtio: VirtioSetup, clone: boolean) => VcpuStateBytes[] {
  const source = { what, body };
  const list = devices(board);
  const names = new Set(["kvm", ...list.map((d) => d.name), ...board.vcpus.map((_, i) => `vcpu${i}`)]);
  for (const s of body.sections) {
    if (!names.has(s.name)) throw new UserError(`${what}: section ${s.name} has no device here`);
  }
  const vm = checked(source, "kvm", () => kvmVmFromRecord("kvm", section(source, "kvm", "kvm-vm").state));
  const vcpus = board.vcpus.map((_, i) =>
    checked(source, `vcpu${i}`, () =>
      vcpuFromRecord(`vcpu${i}`, section(source, `vcpu${i}`, "kvm-vcpu").state),
    ),
  );
  // Refused here, not by the first KVM_RUN: a snapshot from a host with more KVM than this one.
  const caps = vcpuStateCaps(board.kvm);
  vcpus.forEach((v, i) => {
    const missing =
      v.xsave !== null && v.xsave.length > caps.xsaveBytes
        ? `an XSAVE area of ${v.xsave.length} bytes (this host's KVM takes ${caps.xsaveBytes})`
        : v.xcrs !== null && !caps.xcrs
          ? "XCRs (this host's KVM has no KVM_CAP_XCRS)"
          : v.events !== null && !caps.events
            ? "vCPU events (this host's KVM has no KVM_CAP_VCPU_EVENTS)"
            : null;
    if (missing !== null) throw new UserError(`${what}: section vcpu${i} holds ${missing}`);
  });
  return (virtio, clone) => {
    const takenAt = Date.parse(body.takenAt);
    const awayMs = Number.isFinite(takenAt) ? Math.max(0, Date.now() - takenAt) : 0;
    const clock = vm.clock + BigInt(Math.round(awayMs)) * 1_000_000n;
    checked(source, "kvm", () => writeVmState(board.vm, { ...vm, clock }));
    // The devices the board has now (virtio attached after the check): each must have its section.
    for (const { name, kind, part } of devices(board)) {
      let state = section(source, name, kind).state;
      const vsock = virtio.vsock;
      if (clone && kind === "virtio-mmio" && vsock !== null && part === vsockTransport(board, virtio)) {
        // A clone's vsock has its own CID: the device takes it and resets its transport, as on riscv64.
        const device = (state as { device?: unknown } | null)?.device;
        if (typeof device === "object" && device !== null) {
          state = {
            ...(state as object),
            device: { ...device, guestCid: vsock.guestCid, resetPending: true },
          };
        }
      }
      checked(source, name, () => part.restore(state));
    }
    return vcpus;
  };
}

function vsockTransport(board: X86MicroVm, virtio: VirtioSetup): unknown {
  for (const slot of board.virtio.used()) {
    const t = board.virtio.at(slot.index);
    if (t !== null && t.device === virtio.vsock) return t;
  }
  return null;
}
