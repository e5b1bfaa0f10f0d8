/**
 * The Web Worker entry: waits for the page's boot request, fetches (or reads the picked) guest files,
 * opens the persistent disk, runs the machine, and streams the console both ways. Console output is
 * sent once per engine turn (a microtask after the turn's synchronous slice), not a message per byte.
 */
import "./immediate.js";
import { DISK_FILE, type GuestSource, type PageToWorker, type WorkerToPage } from "../protocol.js";
import { createMachine, type Machine } from "./machine.js";
import { fillOpfsFile, OpfsBlockBackend, openOpfsFile } from "./opfs-disk.js";

/** The worker global, as far as used: compiles under the DOM lib (main tsconfig) and WebWorker alike. */
const scope = globalThis as unknown as {
  postMessage(message: WorkerToPage): void;
  onmessage: ((event: MessageEvent<PageToWorker>) => void) | null;
};
const post = (message: WorkerToPage) => scope.postMessage(message);

const READY = new TextEncoder().encode("VIREO-READY");
let machine: Machine | null = null;
/** Input typed before the board exists (the page may send it while files load). */
const earlyInput: Uint8Array[] = [];

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "input") {
    if (machine === null) earlyInput.push(message.bytes);
    else {
      machine.board.consoleInput(message.bytes);
      machine.engine.wake();
    }
    return;
  }
  if (machine !== null) return post({ type: "error", message: "the machine is already booted" });
  boot(message).catch((e: unknown) => post({ type: "error", message: (e as Error).message ?? String(e) }));
};

async function load(source: GuestSource, what: string): Promise<Uint8Array> {
  if ("file" in source) return new Uint8Array(await source.file.arrayBuffer());
  post({ type: "status", text: `fetching the ${what} (${source.url})` });
  const response = await fetch(source.url);
  if (!response.ok) throw new Error(`${source.url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

function nameOf(source: GuestSource): string {
  return "file" in source ? source.name : source.url;
}

async function boot(request: Extract<PageToWorker, { type: "boot" }>): Promise<void> {
  const kernel = await load(request.kernel, "kernel");
  const initrd = request.initrd === null ? null : await load(request.initrd, "initrd");
  let disk: OpfsBlockBackend | null = null;
  let cmdline = request.cmdline;
  if (request.rootDisk !== null) {
    const handle = await openOpfsFile(DISK_FILE);
    if (request.freshDisk || handle.getSize() === 0) {
      const bytes = await load(request.rootDisk, "root disk");
      post({ type: "status", text: `copying the root disk (${bytes.length} bytes) into OPFS` });
      fillOpfsFile(handle, bytes);
    } else {
      post({ type: "status", text: `root disk: the copy in OPFS (${handle.getSize()} bytes)` });
    }
    disk = new OpfsBlockBackend(handle);
    cmdline = `${cmdline} root=/dev/vda rw`;
  }
  let matched = 0;
  let pending: number[] = [];
  const flush = () => {
    const bytes = Uint8Array.from(pending);
    pending = [];
    post({ type: "output", bytes });
  };
  const sink = {
    write(byte: number) {
      if (pending.length === 0) queueMicrotask(flush);
      pending.push(byte);
      // 'V' occurs once in VIREO-READY, so after a mismatch a match can only restart at this byte.
      matched = byte === READY[matched] ? matched + 1 : byte === READY[0] ? 1 : 0;
      if (matched === READY.length) {
        matched = 0;
        // The counts at this moment, so the page can tell the boot's MIPS exactly.
        stats();
        post({ type: "ready" });
      }
    },
  };
  // The guest's MIPS count from here: fetching the files and copying the disk are not the guest's time.
  const started = performance.now();
  const stats = () =>
    post({
      type: "stats",
      instructions: machine?.engine.instructions() ?? 0,
      seconds: (performance.now() - started) / 1000,
    });
  post({ type: "status", text: "booting" });
  const booted = createMachine({
    kernel,
    kernelName: nameOf(request.kernel),
    initrd,
    disk,
    cmdline,
    memoryBytes: request.memoryBytes,
    translate: request.engine === "translate",
    console: sink,
  });
  machine = booted;
  for (const bytes of earlyInput.splice(0)) booted.board.consoleInput(bytes);
  const timer = setInterval(stats, 1000);
  try {
    const result = await booted.engine.run();
    stats();
    post({ type: "exit", reason: result.reason === "exit" ? `exit ${result.code}` : result.reason });
  } finally {
    clearInterval(timer);
    disk?.flush();
  }
}
