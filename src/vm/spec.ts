/**
 * VmSpec: what a VM is, as plain JSON data. The TypeBox schema below is the one source of truth: it is
 * the TypeScript type (`Static`), the validator (compiled once), and a JSON Schema document for an API
 * description. What JSON Schema cannot say (limits that depend on the arch, sums over devices, things
 * given twice, byte lengths) is checked in `validateVmSpec`, the only validator a front end uses.
 *
 * `memory` is a number of bytes, not a size string: JSON readers in any language understand it without
 * our suffix rules, and the schema can bound it (multipleOf 4096). Front ends parse "512M" themselves.
 */
import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { MAX_GUEST_CID, MIN_GUEST_CID } from "../devices/virtio/vsock/protocol.js";
import { CPU_FEATURES } from "../hypervisor/kvm/cpuid.js";
import { defaultMac, formatMac, isUnicastMac, parseMac } from "../net/mac.js";
import { UserError } from "../util/errors.js";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** The interpreter's RAM lives in one 32-bit wasm memory (4 GiB, less hart state): 3G keeps it clear. */
export const RISCV_MEMORY = { min: MiB, max: 3 * GiB } as const;
/** No x86 guest gets more than this, whatever the host has (createVm checks; the host may allow less). */
export const X86_MEMORY = { min: 4 * MiB, max: 1024 * GiB } as const;
export const MAX_CPUS = { riscv64: 8, x86_64: 255 } as const;
/** The riscv64 board's virtio-mmio slots and the x86 microVM's (each device takes one). */
export const VIRTIO_SLOT_COUNT = { riscv64: 8, x86_64: 8 } as const;
/** sockaddr_un.sun_path less its terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

const MAC = "^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$";
/** `switch:NAME` (an in-process learning switch) or `tap:IFNAME` (a host TAP interface). */
const NIC_BACKEND = "^(switch:[A-Za-z0-9_.-]{1,32}|tap:[A-Za-z0-9_.-]{1,15})$";

export const DriveSchema = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    readOnly: Type.Boolean(),
    /** The serial number the guest reads (/dev/disk/by-id/virtio-ID). */
    id: Type.String({ pattern: "^[A-Za-z0-9._-]{1,20}$" }),
  },
  { additionalProperties: false },
);

export const NicSchema = Type.Object(
  {
    backend: Type.String({ pattern: NIC_BACKEND }),
    /** Unicast, not all zero; without it the NIC gets 52:54:00:76:VM:NIC. */
    mac: Type.Optional(Type.String({ pattern: MAC })),
  },
  { additionalProperties: false },
);

/**
 * How a VM gets host CPU from a daemon's scheduler (manager/scheduler/): a host CPU of its own
 * (dedicated), or a share of the pool's (weight, cap and reservation as fractions of one host CPU).
 */
export const CpuShareSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal("shared"), Type.Literal("dedicated")]),
    /** shared: relative share, 1–10000 (default 100, as cgroup v2's cpu.weight). */
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    /** shared: at most this fraction of one host CPU (none by default). */
    cap: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    /** shared: at least this fraction of one host CPU when it has work (0 by default). */
    reservation: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

export const VmSpecSchema = Type.Object(
  {
    name: Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$" }),
    arch: Type.Union([Type.Literal("riscv64"), Type.Literal("x86_64")]),
    /** riscv64: translate (= auto: hot blocks compiled to wasm) or interpreter; x86_64: kvm (= auto). */
    engine: Type.Union([
      Type.Literal("auto"),
      Type.Literal("interpreter"),
      Type.Literal("translate"),
      Type.Literal("kvm"),
    ]),
    cpus: Type.Integer({ minimum: 1, maximum: MAX_CPUS.x86_64 }),
    /**
     * Bytes of guest RAM. The upper bound depends on the arch (checked by validateVmSpec) and, for
     * KVM guests, on what the host has (checked by createVm).
     */
    memory: Type.Integer({ minimum: RISCV_MEMORY.min, multipleOf: 4096 }),
    boot: Type.Object(
      {
        /** A Linux kernel, or with firmware "none" a bare-metal program (riscv64). */
        kernel: Type.String({ minLength: 1 }),
        initrd: Type.Optional(Type.String({ minLength: 1 })),
        cmdline: Type.Optional(Type.String()),
        /** riscv64: "builtin" (the built-in SBI), "none" (bare metal) or a firmware file's path. */
        firmware: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false },
    ),
    drives: Type.Array(DriveSchema),
    nics: Type.Array(NicSchema),
    rng: Type.Boolean(),
    /** A virtio console (hvc0) beside the UART. */
    console: Type.Boolean(),
    balloon: Type.Optional(
      Type.Object(
        {
          targetBytes: Type.Optional(
            Type.Integer({ minimum: 0, multipleOf: 4096, errorMessage: "must be a multiple of 4K" }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    vsock: Type.Optional(
      Type.Object(
        {
          cid: Type.Integer({ minimum: MIN_GUEST_CID, maximum: MAX_GUEST_CID }),
          uds: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * riscv64: a virtio keyboard, which carries stop()'s power-off request (Ctrl-Alt-Del) to the guest.
     * Unsaid: riscv64 Linux boots get one when a virtio slot is free (see hasKeyboard).
     */
    keyboard: Type.Optional(Type.Boolean()),
    virtioRing: Type.Union([Type.Literal("split"), Type.Literal("packed")]),
    /** riscv64: end the run after this many instructions (all harts). */
    maxInstructions: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    /** x86_64: CPUID features hidden from the guest. */
    removeCpuFeatures: Type.Optional(Type.Array(Type.String())),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    /** A daemon boots the VM when it starts (front ends that run one VM ignore it). */
    autostart: Type.Optional(Type.Boolean()),
    /** Host CPU from a daemon's scheduler (default: shared, weight 100); `vireo run` ignores it. */
    cpu: Type.Optional(CpuShareSchema),
    /**
     * reserved: guest RAM committed and touched at start and counted against the host's memory;
     * overcommit (default): committed as the guest touches it, reclaimable through the balloon.
     */
    memoryMode: Type.Optional(Type.Union([Type.Literal("reserved"), Type.Literal("overcommit")])),
    /**
     * The QEMU guest agent of the default images, reached over vsock (exec, files, shutdown). A daemon
     * wires a vsock device with a socket of its own unless the spec has one. Unsaid: on for Linux boots
     * (riscv64 and x86_64) without a vsock of their own while a virtio slot is free (see hasAgent).
     */
    agent: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, $id: "VmSpec" },
);

export type VmSpec = Static<typeof VmSpecSchema>;
export type DriveSpec = Static<typeof DriveSchema>;
export type NicSpec = Static<typeof NicSchema>;
export type CpuShare = Static<typeof CpuShareSchema>;

const checker = TypeCompiler.Compile(VmSpecSchema);

/** One problem with a spec: the JSON pointer of the field ("" for the whole spec) and what is wrong. */
export interface SpecProblem {
  path: string;
  message: string;
}

/** A spec that failed validation; `problems` lists every one found, the message all of them. */
export class VmSpecError extends UserError {
  override name = "VmSpecError";
  constructor(readonly problems: readonly SpecProblem[]) {
    super(problems.map((p) => `${p.path || "/"}: ${p.message}`).join("; "));
  }
}

/**
 * Checks anything against the schema and the rules it cannot express; returns it typed, or throws a
 * VmSpecError naming every field that is wrong. Never throws anything else, whatever `value` is.
 */
export function validateVmSpec(value: unknown): VmSpec {
  const problems: SpecProblem[] = [];
  // One message per field: a union failing gives one error per branch, the first says enough.
  const seen = new Set<string>();
  const arch = (value as { arch?: unknown } | null)?.arch;
  for (const e of checker.Errors(value)) {
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    // A field may say in its schema (errorMessage, not a JSON Schema keyword) how to put its rule.
    let message = (e.schema as { errorMessage?: string }).errorMessage ?? e.message;
    if (e.path === "/memory" && (arch === "riscv64" || arch === "x86_64")) message = memoryRule(arch);
    problems.push({ path: e.path, message: message.charAt(0).toLowerCase() + message.slice(1) });
  }
  if (problems.length > 0) throw new VmSpecError(problems);
  const spec = value as VmSpec;
  crossChecks(spec, (path, message) => problems.push({ path, message }));
  if (problems.length > 0) throw new VmSpecError(problems);
  return spec;
}

function memoryRule(arch: VmSpec["arch"]): string {
  return arch === "riscv64"
    ? `riscv64 guests take from ${RISCV_MEMORY.min / MiB}M to ${RISCV_MEMORY.max / GiB}G, in multiples of 4K`
    : `x86_64 guests take at least ${X86_MEMORY.min / MiB}M (and what the host can give), in multiples of 4K`;
}

function crossChecks(spec: VmSpec, problem: (path: string, message: string) => void): void {
  const riscv = spec.arch === "riscv64";
  if (riscv && spec.engine === "kvm")
    problem("/engine", "riscv64 guests run on the interpreter or translator");
  if (!riscv && (spec.engine === "interpreter" || spec.engine === "translate"))
    problem("/engine", "x86_64 guests run on KVM");
  const tooBig = riscv && spec.memory > RISCV_MEMORY.max;
  if (spec.memory < (riscv ? RISCV_MEMORY : X86_MEMORY).min || tooBig)
    problem("/memory", memoryRule(spec.arch));
  if (spec.cpus > MAX_CPUS[spec.arch])
    problem("/cpus", `${spec.arch} guests have 1 to ${MAX_CPUS[spec.arch]}`);
  const firmware = spec.boot.firmware ?? "builtin";
  if (riscv) {
    if (spec.removeCpuFeatures !== undefined) problem("/removeCpuFeatures", "only for x86_64 guests on KVM");
    if (firmware === "none") {
      for (const field of ["initrd", "cmdline"] as const) {
        if (spec.boot[field] !== undefined) {
          problem(`/boot/${field}`, "needs a Linux boot (firmware builtin or a firmware file)");
        }
      }
    }
  } else {
    if (spec.boot.firmware !== undefined) problem("/boot/firmware", "only for riscv64 guests");
    if (spec.maxInstructions !== undefined) problem("/maxInstructions", "only for riscv64 guests");
    spec.removeCpuFeatures?.forEach((f, i) => {
      if (!(f in CPU_FEATURES)) {
        problem(`/removeCpuFeatures/${i}`, `unknown feature (known: ${Object.keys(CPU_FEATURES).join(" ")})`);
      }
    });
  }
  const target = spec.balloon?.targetBytes;
  if (target !== undefined && target >= spec.memory) {
    problem("/balloon/targetBytes", "must be smaller than /memory");
  }
  const uds = spec.vsock?.uds;
  if (uds !== undefined) {
    const bytes = new TextEncoder().encode(uds).length;
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      problem(
        "/vsock/uds",
        `a Unix socket path is at most ${MAX_SOCKET_PATH_BYTES} bytes, this one has ${bytes}`,
      );
    }
  }
  if (!riscv && spec.keyboard === true) problem("/keyboard", "only for riscv64 guests");
  if (riscv && firmware === "none" && spec.agent === true) problem("/agent", "needs a Linux boot");
  if (
    spec.agent === true &&
    spec.vsock === undefined &&
    otherVirtioDevices(spec) >= VIRTIO_SLOT_COUNT[spec.arch]
  )
    problem(
      "/agent",
      `needs a virtio slot for its vsock device: the board has ${VIRTIO_SLOT_COUNT[spec.arch]}`,
    );
  for (const p of cpuShareProblems(spec.cpu)) problem(`/cpu${p.path}`, p.message);
  const devices = otherVirtioDevices(spec) + (spec.keyboard === true ? 1 : 0);
  if (devices > VIRTIO_SLOT_COUNT[spec.arch]) {
    problem("", `too many virtio devices: the board has ${VIRTIO_SLOT_COUNT[spec.arch]} slots`);
  }
  twice(
    spec.drives.map((d) => d.path),
    (i, p) => problem(`/drives/${i}/path`, `'${p}' is given twice`),
  );
  twice(
    spec.drives.map((d) => d.id),
    (i, id) => problem(`/drives/${i}/id`, `id '${id}' is given twice`),
  );
  for (const p of nicProblems(spec.nics)) problem(p.path, p.message);
}

/** What the schema cannot say about a CPU share (paths relative to it). */
export function cpuShareProblems(share: CpuShare | undefined): SpecProblem[] {
  if (share === undefined) return [];
  const problems: SpecProblem[] = [];
  if (share.mode === "dedicated") {
    for (const field of ["weight", "cap", "reservation"] as const) {
      if (share[field] !== undefined) problems.push({ path: `/${field}`, message: "only for mode shared" });
    }
  } else if (share.cap !== undefined && (share.reservation ?? 0) > share.cap) {
    problems.push({ path: "/reservation", message: "must not exceed /cpu/cap" });
  }
  return problems;
}

/** The virtio devices of a spec other than the keyboard. */
function otherVirtioDevices(spec: VmSpec): number {
  return (
    spec.drives.length +
    spec.nics.length +
    (spec.rng ? 1 : 0) +
    (spec.console ? 1 : 0) +
    (spec.balloon !== undefined ? 1 : 0) +
    (spec.vsock !== undefined ? 1 : 0)
  );
}

/**
 * Whether the VM has the guest agent: as `agent` says; unsaid, Linux boots (riscv64 and x86_64: both
 * default images carry qemu-ga) do when they bring no vsock device of their own and a virtio slot is
 * free for the one the daemon adds.
 */
export function hasAgent(spec: VmSpec): boolean {
  if ((spec.boot.firmware ?? "builtin") === "none") return false;
  if (spec.agent !== undefined) return spec.agent;
  return spec.vsock === undefined && otherVirtioDevices(spec) < VIRTIO_SLOT_COUNT[spec.arch];
}

/**
 * Whether the VM gets the virtio keyboard: as `keyboard` says; unsaid, a riscv64 Linux boot gets one
 * when a virtio slot is left (so stop() can ask its guest to power off), and a spec that fills every
 * slot stays valid, without it. Bare-metal programs get none unless asked; x86_64 guests none (a
 * spec for them may not ask).
 */
export function hasKeyboard(spec: VmSpec): boolean {
  if (spec.keyboard !== undefined) return spec.keyboard && spec.arch === "riscv64";
  return (
    spec.arch === "riscv64" &&
    (spec.boot.firmware ?? "builtin") !== "none" &&
    otherVirtioDevices(spec) < VIRTIO_SLOT_COUNT.riscv64
  );
}

/**
 * The rules over one VM's NICs together: no TAP twice, unicast MACs, no MAC twice, counting the default
 * MACs (52:54:00:76:VM:NIC) of NICs without one; `vm` numbers the VM for those.
 */
export function nicProblems(nics: readonly NicSpec[], vm = 0): SpecProblem[] {
  const problems: SpecProblem[] = [];
  twice(
    nics.map((n, i) => (n.backend.startsWith("tap:") ? n.backend : `#${i}`)),
    (i, tap) =>
      problems.push({ path: `/nics/${i}/backend`, message: `tap '${tap.slice(4)}' is given twice` }),
  );
  nics.forEach((n, i) => {
    if (n.mac === undefined) return;
    const mac = parseMac(n.mac);
    if (mac !== null && !isUnicastMac(mac)) {
      problems.push({ path: `/nics/${i}/mac`, message: "must be a unicast address, not all zero" });
    }
  });
  twice(
    nics.map((n, i) => n.mac?.toLowerCase() ?? formatMac(defaultMac(vm, i))),
    (i, mac) => problems.push({ path: `/nics/${i}/mac`, message: `MAC ${mac} is used twice` }),
  );
  return problems;
}

/** Calls `found` for each value equal to an earlier one. */
function twice(values: readonly string[], found: (index: number, value: string) => void): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) found(i, v);
    seen.add(v);
  });
}
