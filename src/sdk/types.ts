/**
 * The SDK's types, derived from the TypeBox schemas the OpenAPI document is generated from
 * (src/api/schemas.ts, src/vm/spec.ts): a field the API gains or loses changes these with it.
 * Type-only imports: the SDK loads neither TypeBox nor the daemon at run time.
 */
import type { Static } from "@sinclair/typebox";
import type {
  AcquireSchema,
  BalloonSchema,
  BalloonTargetSchema,
  ErrorSchema,
  ExecBodySchema,
  ExecResultSchema,
  ExecStreamEndSchema,
  ExecStreamStartSchema,
  MigrateInRequestSchema,
  MigrateInResultSchema,
  MigrateRequestSchema,
  MigrationResultSchema,
  PoolCreateSchema,
  PoolSchema,
  SnapshotRequestSchema,
  SnapshotResultSchema,
  VmFromSnapshotSchema,
  VmInfoSchema,
} from "../api/schemas.js";
import type { CpuShareSchema, DriveSchema, NicSchema, VmSpecSchema } from "../vm/spec.js";

export type VmSpec = Static<typeof VmSpecSchema>;
export type VmInfo = Static<typeof VmInfoSchema>;
export type DriveSpec = Static<typeof DriveSchema>;
export type NicSpec = Static<typeof NicSchema>;
export type CpuShare = Static<typeof CpuShareSchema>;
export type Balloon = Static<typeof BalloonSchema>;
export type BalloonTarget = Static<typeof BalloonTargetSchema>;
export type PoolCreate = Static<typeof PoolCreateSchema>;
export type Pool = Static<typeof PoolSchema>;
export type AcquireOptions = Static<typeof AcquireSchema>;
export type ApiErrorBody = Static<typeof ErrorSchema>;
export type VmFromSnapshot = Static<typeof VmFromSnapshotSchema>;
export type ExecRequest = Static<typeof ExecBodySchema>;
export type ExecResult = Static<typeof ExecResultSchema>;
export type ExecStreamStart = Static<typeof ExecStreamStartSchema>;
export type ExecStreamEnd = Static<typeof ExecStreamEndSchema>;
export type SnapshotRequest = Static<typeof SnapshotRequestSchema>;
export type SnapshotResult = Static<typeof SnapshotResultSchema>;
export type MigrateInRequest = Static<typeof MigrateInRequestSchema>;
export type MigrateInResult = Static<typeof MigrateInResultSchema>;
export type MigrateRequest = Static<typeof MigrateRequestSchema>;
export type MigrationResult = Static<typeof MigrationResultSchema>;
/** ActionParams' union, which TypeBox builds from an array and so types as string. */
export type VmAction = "start" | "pause" | "resume" | "stop" | "kill" | "reboot";

/** What GET /events streams (see its summary in the OpenAPI document). */
export type VireoEvent =
  | { type: "created" | "deleted" | "state"; vm: VmInfo }
  | {
      type: "memory";
      vm: VmInfo;
      memory: { vm: string; from: number; target: number; reason: string; available: number; at: string };
    }
  | {
      type: "pool";
      change: "created" | "deleted" | "ready" | "acquired" | "released" | "failed";
      pool: Pool;
      vm?: string;
    };

/** GET /host: loosely typed, as the document describes it ("object"). */
export type HostInfo = {
  cpus: number;
  memory: { total: number; free: number };
  vms: number;
  committed: { vms: number; cpus: number; memory: number };
} & Record<string, unknown>;

/** GET /vms/{id}/stats: counters that differ by architecture and devices. */
export type VmStats = { arch: string; seconds: number } & Record<string, unknown>;
