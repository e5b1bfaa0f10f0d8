/**
 * The daemon's API as the page uses it: same origin, authenticated by the login cookie (HttpOnly, so
 * this code never sees the token). A failure becomes an ApiError carrying the daemon's own message
 * and the fields it names; a 401 also sends the page to the login form.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};

export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

interface ErrorBody {
  error?: string;
  message?: string;
  fields?: { path: string; message: string }[];
}

async function failure(method: string, path: string, response: Response): Promise<ApiError> {
  let body: ErrorBody = {};
  try {
    body = (await response.json()) as ErrorBody;
  } catch {}
  const fields = (body.fields ?? []).map((f) => `${f.path || "/"} ${f.message}`).join("; ");
  const what = body.message ?? response.statusText;
  const detail = fields !== "" && !what.includes(fields) ? `${what} (${fields})` : what;
  return new ApiError(response.status, `${method} ${path}: ${response.status} ${detail}`);
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    throw await failure(method, path, response);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/**
 * Uploads a file picked in the create form into the daemon's uploads folder (streamed: the browser sends
 * the File as it reads it); answers the path a spec names.
 */
export async function upload(file: File): Promise<{ path: string; bytes: number }> {
  const name =
    file.name
      .replace(/[^A-Za-z0-9._-]/g, "_")
      .replace(/^[._-]+/, "")
      .slice(0, 100) || "file";
  const path = `/web/uploads?name=${encodeURIComponent(name)}`;
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/x-vireo-upload" },
    body: file,
  });
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    throw await failure("POST", path, response);
  }
  return (await response.json()) as { path: string; bytes: number };
}

/** Posts the token; false when the daemon refuses it (401). */
export async function login(token: string): Promise<boolean> {
  const response = await fetch("/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.status === 401) return false;
  if (!response.ok) throw await failure("POST", "/login", response);
  return true;
}

export type VmStateName = "created" | "running" | "paused" | "stopped" | "failed";

export interface VmSpecBody {
  name: string;
  arch: "riscv64" | "x86_64";
  engine: "auto" | "interpreter" | "translate" | "kvm";
  cpus: number;
  memory: number;
  boot: { kernel: string; initrd?: string; cmdline?: string; firmware?: string };
  drives: { path: string; readOnly: boolean; id?: string }[];
  nics: { backend: string; mac?: string }[];
  rng: boolean;
  console: boolean;
  balloon?: { targetBytes?: number };
  keyboard?: boolean;
  vsock?: { cid: number; uds?: string };
  virtioRing: "split" | "packed";
  autostart?: boolean;
  cpu?: { mode: "shared" | "dedicated"; weight?: number; cap?: number; reservation?: number };
  memoryMode?: "reserved" | "overcommit";
}

export interface VmInfo {
  id: string;
  name: string;
  state: VmStateName;
  reason?: string;
  exit?: { reason: string };
  createdAt: string;
  spec: VmSpecBody;
}

export type Counts = [string, number][];

export interface VmStats {
  seconds: number;
  instructions?: number;
  hypercalls?: Counts;
  traps?: Counts;
  interrupts?: Counts;
  exits?: { total: number };
  nics: { counters: Record<string, number> }[];
  vsock?: { counters: Record<string, number> };
  keyboard?: Record<string, number>;
  virtio?: { counters: Record<string, number> }[];
  memory?: {
    mode: string;
    balloonTargetBytes?: number;
    balloonActualBytes?: number;
    guestFreeBytes?: number | null;
  };
  scheduling?: { mode: string; cpuMs: number; readyMs: number; cpus: number[] };
}

export interface HostInfo {
  cpus: number;
  memory: { total: number; free: number };
  vms: number;
  committed: { vms: number; cpus: number; memory: number };
  scheduler: {
    hostCpus: number;
    sharedCpus: number[];
    dedicated: { vm: string; cpus: number[] }[];
    meanQueueLength: number;
  };
  memoryGovernor: {
    intervalMs: number;
    low: number;
    high: number;
    rounds: number;
    available: number | null;
    balloons: Record<string, { targetBytes: number; actualBytes: number; freeBytes: number | null }>;
  } | null;
  damaged: { file: string; reason: string }[];
}

export interface Balloon {
  targetBytes: number;
  actualBytes: number;
}

export interface WebDefaults {
  image: { kernel: string; initrd: string; cmdline: string } | null;
}

export const vmPath = (id: string) => `/vms/${encodeURIComponent(id)}`;
