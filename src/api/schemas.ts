/**
 * The API's schemas besides VmSpec (which src/vm/spec.ts owns): route parameters, which the daemon
 * validates, and the answers, which only the OpenAPI document describes.
 */
import { Type } from "@sinclair/typebox";
import { DriveSchema, NicSchema, VmSpecSchema } from "../vm/spec.js";

export const VmIdParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 200, description: "The VM's name or id" }) },
  { additionalProperties: false },
);

export const DriveParams = Type.Object(
  {
    id: VmIdParams.properties.id,
    drive: Type.String({ ...DriveSchema.properties.id, description: "The drive's id (its serial number)" }),
  },
  { additionalProperties: false },
);

export const NicParams = Type.Object(
  {
    id: VmIdParams.properties.id,
    nic: Type.String({
      pattern: "^(0|[1-9][0-9]{0,2})$",
      description: "The NIC's place in the spec's nics, from 0; PUT with the count adds one",
    }),
  },
  { additionalProperties: false },
);

/** In bytes, as /balloon/targetBytes of a VmSpec (front ends parse "128M" themselves). */
export const BalloonTargetSchema = Type.Object(
  {
    targetBytes: Type.Integer({
      minimum: 0,
      multipleOf: 4096,
      description: "What the guest is asked to hold in its balloon (give back); below the VM's memory",
    }),
  },
  { additionalProperties: false, $id: "BalloonTarget" },
);

export const BalloonSchema = Type.Object(
  {
    targetBytes: Type.Integer({ description: "What the host asks the guest to hold in the balloon" }),
    actualBytes: Type.Integer({ description: "What the guest's driver says it holds" }),
    inflatedBytes: Type.Integer({ description: "What the device counts as inflated" }),
    peakActualBytes: Type.Integer(),
    peakInflatedBytes: Type.Integer(),
    reclaimedBytes: Type.Integer({ description: "Host memory given back behind ballooned pages" }),
    resets: Type.Integer({ description: "Device resets by the guest (each empties the balloon)" }),
    reclaimer: Type.String({ description: "How the host gives pages back" }),
  },
  { $id: "Balloon" },
);

export const ActionParams = Type.Object(
  {
    id: VmIdParams.properties.id,
    action: Type.Union(
      ["start", "pause", "resume", "stop", "kill", "reboot"].map((a) => Type.Literal(a)),
      { description: "What to do; it must fit the VM's state, else 409" },
    ),
  },
  { additionalProperties: false },
);

export const ActionQuery = Type.Object(
  {
    grace_ms: Type.Optional(
      Type.String({
        pattern: "^[0-9]{1,6}$",
        description: "stop: milliseconds the guest gets to end on its own before it is killed",
      }),
    ),
  },
  { additionalProperties: false },
);

export const ListQuery = Type.Object(
  {
    label: Type.Optional(
      Type.Union([Type.String({ pattern: "^[^=]+=" }), Type.Array(Type.String({ pattern: "^[^=]+=" }))], {
        description: "KEY=VALUE; repeat it to require several labels",
      }),
    ),
  },
  { additionalProperties: false },
);

export const ConsoleQuery = Type.Object(
  {
    follow: Type.Optional(
      Type.String({ description: "Present: after what is held, stream new output until the client leaves" }),
    ),
  },
  { additionalProperties: false },
);

export const ErrorSchema = Type.Object(
  {
    error: Type.String({ description: "invalid, not-found, conflict, too-large, ..." }),
    message: Type.String(),
    fields: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: "Error" },
);

export const VmInfoSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    state: Type.Union(["created", "running", "paused", "stopped", "failed"].map((s) => Type.Literal(s))),
    reason: Type.Optional(Type.String({ description: "state failed: why" })),
    exit: Type.Optional(
      Type.Object({ reason: Type.String() }, { description: "state stopped: how the run ended" }),
    ),
    labels: Type.Record(Type.String(), Type.String()),
    autostart: Type.Boolean(),
    createdAt: Type.String({ format: "date-time" }),
    spec: Type.Ref(VmSpecSchema),
  },
  { $id: "VmInfo" },
);

export const PoolParams = Type.Object(
  { pool: Type.String({ minLength: 1, maxLength: 200, description: "The pool's name or id" }) },
  { additionalProperties: false },
);

export const PoolCreateSchema = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
        description: "Default pool-XXXXXX; its VMs are named NAME-XXXXXXXX and labelled vireo.pool=NAME",
      }),
    ),
    spec: Type.Ref(VmSpecSchema),
    size: Type.Integer({ minimum: 0, maximum: 64, description: "VMs kept booted and idle" }),
    readyMarker: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Null()], {
        description:
          "Console output that says a VM has booted; null: running is enough. Default VIREO-READY for a spec with an initrd, else null",
      }),
    ),
  },
  { additionalProperties: false, $id: "PoolCreate" },
);

export const PoolSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    size: Type.Integer(),
    ready: Type.Integer({ description: "Idle VMs that have booted" }),
    booting: Type.Integer({ description: "Idle VMs still booting" }),
    waiting: Type.Integer({ description: "Acquirers waiting for a ready VM" }),
    readyMarker: Type.Union([Type.String(), Type.Null()]),
    vms: Type.Array(Type.String(), { description: "The idle VMs' names" }),
    createdAt: Type.String({ format: "date-time" }),
    lastError: Type.Optional(Type.String({ description: "Why a VM of the pool last failed to start" })),
    source: Type.Union([Type.Literal("snapshot"), Type.Literal("boot")], {
      description:
        "How its VMs come: clones of a snapshot of one VM booted once (riscv64 with a state directory), or each booted",
    }),
    snapshotError: Type.Optional(
      Type.String({ description: "Why the pool boots each VM: its template snapshot could not be made" }),
    ),
    spec: Type.Ref(VmSpecSchema),
  },
  { $id: "Pool" },
);

export const AcquireSchema = Type.Object(
  {
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 600_000,
        description: "How long to wait for a ready VM when none is (default 30000)",
      }),
    ),
  },
  { additionalProperties: false, $id: "Acquire" },
);

export const ReleaseSchema = Type.Object(
  { vm: Type.String({ minLength: 1, maxLength: 200, description: "The acquired VM's name or id" }) },
  { additionalProperties: false, $id: "Release" },
);

/**
 * Other host backends for a VM that arrives from a snapshot or a migration (vm/backend-overrides.ts):
 * each value is the VmSpec's own schema, and the spec they make is validated whole.
 */
const BackendOverrideProperties = {
  vsockUds: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "Absolute path of the vsock device's host Unix socket, in place of the saved one (which the source VM may still hold; a clone has none unless given)",
    }),
  ),
  nics: Type.Optional(
    Type.Record(Type.String({ pattern: "^(0|[1-9][0-9]{0,3})$" }), NicSchema.properties.backend, {
      description:
        'Other NIC backends (switch:NAME or tap:IFNAME), by NIC index ("0" is the spec\'s first NIC)',
      additionalProperties: false,
    }),
  ),
};

/** POST /vms from a snapshot instead of a spec: the VM comes from the snapshot's directory. */
export const VmFromSnapshotSchema = Type.Object(
  {
    name: VmSpecSchema.properties.name,
    restore: Type.Optional(
      Type.String({ minLength: 1, description: "Absolute path of a snapshot: continue its VM under `name`" }),
    ),
    clone: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Absolute path of a snapshot: a copy of its VM (new MACs, a free vsock CID, its disks copied to <snapshot>/clones/<name>/)",
      }),
    ),
    drives: Type.Optional(
      Type.Record(Type.String(), Type.String({ minLength: 1 }), {
        description: "Other image files for drives, by drive id; each must have the saved drive's size",
      }),
    ),
    ...BackendOverrideProperties,
  },
  { additionalProperties: false, $id: "VmFromSnapshot" },
);

/** POST /vms: a VmSpec, or a snapshot to restore or clone. */
export const VmCreateSchema = Type.Union([Type.Ref(VmSpecSchema), Type.Ref(VmFromSnapshotSchema)], {
  $id: "VmCreate",
});

export const SnapshotRequestSchema = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      description:
        "Absolute path of the directory to write (created if missing); a path ending in .vsnap is written as one file instead",
    }),
    resume: Type.Optional(
      Type.Boolean({ description: "Run on after saving (default true); false leaves a running VM paused" }),
    ),
    compression: Type.Optional(
      Type.Union([Type.Literal("none"), Type.Literal("zlib")], {
        description: "Of the memory file (default none)",
      }),
    ),
  },
  { additionalProperties: false, $id: "SnapshotRequest" },
);

export const SnapshotResultSchema = Type.Object(
  {
    path: Type.String(),
    pages: Type.Integer({ description: "Non-zero RAM pages saved (only those are)" }),
    ramBytes: Type.Integer({ description: "Bytes of RAM they hold" }),
    sections: Type.Integer({ description: "Device and hart sections of the state file" }),
    pausedMs: Type.Number({ description: "How long the guest was paused for it" }),
  },
  { $id: "SnapshotResult" },
);

export const ExecBodySchema = Type.Object(
  {
    argv: Type.Array(Type.String({ maxLength: 64 * 1024 }), {
      minItems: 1,
      maxItems: 4096,
      description: "The program (searched on the guest's PATH) and its arguments",
    }),
    env: Type.Optional(
      Type.Array(Type.String({ pattern: "^[^=]+=" }), {
        maxItems: 4096,
        description:
          "KEY=VALUE; given, the program gets these (and PATH unless one is given), else the agent's",
      }),
    ),
    stdin: Type.Optional(Type.String({ description: "Text passed as standard input" })),
    stdinBase64: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9+/]*={0,2}$",
        description: "Bytes passed as standard input, base64",
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 24 * 3600 * 1000,
        description: "Past this (default 60000) the program is killed in the guest and the answer is 504",
      }),
    ),
    outputCap: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 16 * 1024 * 1024,
        description: "Bytes kept of stdout and of stderr each (default 1 MiB); the rest is cut and flagged",
      }),
    ),
  },
  { additionalProperties: false, $id: "ExecRequest" },
);

export const ExecResultSchema = Type.Object(
  {
    exitCode: Type.Union([Type.Integer(), Type.Null()], {
      description: "The program's exit status (127: not found); null when a signal ended it",
    }),
    signal: Type.Optional(Type.Integer({ description: "The signal that ended it" })),
    stdout: Type.String(),
    stderr: Type.String(),
    stdoutEncoding: Type.Union([Type.Literal("utf8"), Type.Literal("base64")]),
    stderrEncoding: Type.Union([Type.Literal("utf8"), Type.Literal("base64")]),
    truncated: Type.Boolean({ description: "Output past outputCap was dropped" }),
    timedOut: Type.Boolean({ description: "Killed past timeoutMs (the answer is then 504)" }),
  },
  { $id: "ExecResult" },
);

/** The first message of the exec WebSocket (GET /vms/{id}/exec): what to run. */
export const ExecStreamStartSchema = Type.Object(
  {
    argv: Type.Array(Type.String({ maxLength: 16 * 1024 }), {
      minItems: 1,
      maxItems: 1024,
      description: "The program (searched on the guest's PATH) and its arguments",
    }),
    env: Type.Optional(
      Type.Array(Type.String({ pattern: "^[^=]+=" }), {
        maxItems: 1024,
        description:
          "KEY=VALUE; given, the program gets these (and PATH unless one is given), else the agent's",
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 24 * 3600 * 1000,
        description:
          "Past this (default 3600000) the program's process group is killed in the guest and the last frame is {type: timeout}",
      }),
    ),
  },
  { additionalProperties: false, $id: "ExecStreamStart" },
);

/** The last text frame of the exec WebSocket. */
export const ExecStreamEndSchema = Type.Object(
  {
    type: Type.Union([Type.Literal("exit"), Type.Literal("timeout"), Type.Literal("error")], {
      description:
        "exit: the program ended; timeout: killed past timeoutMs; error: it could not run or the agent failed",
    }),
    exitCode: Type.Optional(
      Type.Union([Type.Integer(), Type.Null()], {
        description: "The program's exit status (127: not found; 128+N: ended by signal N); null once killed",
      }),
    ),
    signal: Type.Optional(
      Type.Integer({ description: "The signal that ended the program's group (9: killed)" }),
    ),
    error: Type.Optional(Type.String({ description: "With type error: the API's error code" })),
    message: Type.Optional(Type.String({ description: "With type error: why" })),
  },
  { $id: "ExecStreamEnd" },
);

export const FileQuery = Type.Object(
  {
    path: Type.String({
      pattern: "^/",
      minLength: 2,
      maxLength: 4096,
      description: "An absolute path in the guest",
    }),
  },
  { additionalProperties: false },
);

export const MigrateInRequestSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: "The name the arriving VM gets here" }),
    listen: Type.String({
      minLength: 1,
      description: "Where to wait for the source: an absolute Unix socket path, or host:port (TCP, loopback)",
    }),
    ...BackendOverrideProperties,
  },
  { additionalProperties: false, $id: "MigrateInRequest" },
);

export const MigrateInResultSchema = Type.Object(
  { name: Type.String(), listen: Type.String() },
  { $id: "MigrateInResult" },
);

export const MigrateRequestSchema = Type.Object(
  {
    to: Type.String({
      minLength: 1,
      description:
        "The target daemon's migration listener (POST /vms/migrate-in there): socket path or host:port",
    }),
    downtimeMs: Type.Optional(
      Type.Number({
        minimum: 1,
        description: "Longest pause the last pass may take at the measured send rate (default 300)",
      }),
    ),
  },
  { additionalProperties: false, $id: "MigrateRequest" },
);

export const MigrationResultSchema = Type.Object(
  {
    to: Type.String(),
    passes: Type.Integer({ description: "Memory passes sent, the last (paused) one included" }),
    bytes: Type.Integer({ description: "Bytes sent: memory passes and device state" }),
    pages: Type.Integer({ description: "RAM pages sent over all passes" }),
    totalMs: Type.Number({
      description: "From the start of the migration to the target's word that the VM runs",
    }),
    downtimeMs: Type.Number({
      description: "From pausing the guest here to the target's word that it runs there",
    }),
    throttle: Type.Number({ description: "The strongest auto-converge throttle applied (0: none)" }),
  },
  { $id: "MigrationResult" },
);
