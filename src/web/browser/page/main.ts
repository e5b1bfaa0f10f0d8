/**
 * The page: an xterm.js terminal on the main thread wired to the machine in a Web Worker (worker.js),
 * the time from page load to the guest's VIREO-READY, and the guest's MIPS. It boots the default guest
 * at once; query parameters change the engine (the translator; ?engine=interpret for the interpreter alone), RAM (?memory=MiB) and the kernel
 * command line (?cmdline=…).
 */
import { Terminal } from "@xterm/xterm";
import { type BootRequest, DISK_FILE, type GuestSource, type WorkerToPage } from "../protocol.js";

const IMAGES = "images/riscv64/";
const DEFAULT_CMDLINE = "console=ttyS0 earlycon=sbi";

const params = new URLSearchParams(location.search);
const engine = params.get("engine") === "interpret" ? "interpret" : "translate";
const memoryMiB = Number(params.get("memory") ?? "512");
const cmdline = params.get("cmdline") ?? DEFAULT_CMDLINE;

const element = (id: string) => document.getElementById(id) as HTMLElement;
const show = (id: string, text: string) => {
  element(id).textContent = text;
};

/** What the test and the benchmark read: filled in as the boot goes. */
const state = {
  readyMs: null as number | null,
  instructions: 0,
  seconds: 0,
  exit: null as string | null,
  /** Every status line of this page's boots, in order. */
  statuses: [] as string[],
};
(window as unknown as { vireo: typeof state }).vireo = state;

const term = new Terminal({ cols: 100, rows: 30, scrollback: 5000 });
term.open(element("terminal"));
const encoder = new TextEncoder();

let worker: Worker | null = null;

/** Starts a machine; the time to its shell prompt counts from page load, or from now. */
function start(request: BootRequest, fromPageLoad: boolean): void {
  worker?.terminate();
  state.readyMs = null;
  state.exit = null;
  // performance.now() counts from the page's navigation start.
  const started = fromPageLoad ? 0 : performance.now();
  const w = new Worker("worker.js", { type: "module" });
  worker = w;
  w.onmessage = (event: MessageEvent<WorkerToPage>) => {
    const m = event.data;
    switch (m.type) {
      case "output":
        term.write(m.bytes);
        break;
      case "status":
        state.statuses.push(m.text);
        show("status", m.text);
        break;
      case "ready":
        if (state.readyMs !== null) break;
        state.readyMs = performance.now() - started;
        show("status", "running");
        show(
          "ready",
          `${fromPageLoad ? "page load" : "boot"} → shell prompt: ${(state.readyMs / 1000).toFixed(2)} s`,
        );
        break;
      case "stats":
        state.instructions = m.instructions;
        state.seconds = m.seconds;
        show("mips", `${(m.instructions / m.seconds / 1e6).toFixed(1)} MIPS (${engine})`);
        break;
      case "exit":
        state.exit = m.reason;
        show("status", `the machine stopped (${m.reason})`);
        break;
      case "error":
        show("error", m.message);
        show("status", "failed");
        break;
    }
  };
  w.onerror = (event) => show("error", `worker: ${event.message}`);
  w.postMessage(request);
  term.focus();
}

term.onData((data) => worker?.postMessage({ type: "input", bytes: encoder.encode(data) }));

function request(
  kernel: GuestSource,
  initrd: GuestSource | null,
  rootDisk: GuestSource | null,
  fresh: boolean,
) {
  return {
    type: "boot",
    kernel,
    initrd,
    rootDisk,
    freshDisk: fresh,
    cmdline,
    memoryBytes: memoryMiB * 1024 * 1024,
    engine,
  } satisfies BootRequest;
}

const picked = (id: string): GuestSource | null => {
  const file = (element(id) as HTMLInputElement).files?.[0];
  return file === undefined ? null : { file, name: file.name };
};

element("boot-picked").addEventListener("click", () => {
  const kernel = picked("kernel");
  if (kernel === null) return show("error", "pick a kernel first");
  show("error", "");
  term.reset();
  const disk = picked("disk");
  // A picked disk replaces the persistent one; without one, the persistent disk stays as it is.
  start(request(kernel, picked("initrd"), disk ?? { url: `${IMAGES}rootfs.ext4` }, disk !== null), false);
});

element("reset-disk").addEventListener("click", async () => {
  // The worker holds the file's only access handle: end it first; the browser lets go of it shortly after.
  worker?.terminate();
  worker = null;
  const root = await navigator.storage.getDirectory();
  for (let tries = 1; ; tries++) {
    try {
      await root.removeEntry(DISK_FILE);
      break;
    } catch (e) {
      const name = (e as Error).name;
      if (name === "NotFoundError") break;
      if (name !== "NoModificationAllowedError" || tries >= 50) {
        return show("error", `could not erase the disk: ${(e as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  location.reload();
});

start(
  request(
    { url: `${IMAGES}Image` },
    { url: `${IMAGES}initramfs.cpio.gz` },
    { url: `${IMAGES}rootfs.ext4` },
    false,
  ),
  true,
);
