/**
 * One VM: its state and actions, the balloon target, its console, and live charts of what the
 * virtualization does: guest MIPS, traps, hypercalls (SBI calls), interrupts, virtio requests per
 * second, the time it waited for a host CPU, and its memory as the balloon and the guest report it.
 */
import { api, type Balloon, type Counts, type VmInfo, type VmStats, vmPath } from "./api.js";
import { LiveChart } from "./charts.js";
import { fill, h, mib } from "./dom.js";
import { guarded, showError } from "./errors.js";
import { attachConsole, type ConsoleView } from "./terminal.js";

const POLL_MS = 1000;
const MiB = 2 ** 20;

/** Which actions fit which state (the daemon refuses the rest with 409, which the page would show). */
const ACTIONS: Record<string, VmInfo["state"][]> = {
  start: ["created", "stopped", "failed"],
  pause: ["running"],
  resume: ["paused"],
  stop: ["running", "paused"],
  kill: ["running", "paused"],
};

const total = (counts: Counts | undefined) => (counts ?? []).reduce((sum, [, n]) => sum + n, 0);

/**
 * Requests the driver sent the VM's virtio devices: the queue notifications every slot counts (riscv64:
 * the transport's; x86_64: doorbells by MMIO exit or ioeventfd). A device that suppresses notifications
 * while busy batches several requests into one.
 */
function virtioRequests(s: VmStats): number {
  let sum = 0;
  for (const slot of s.virtio ?? []) {
    for (const [k, v] of Object.entries(slot.counters))
      if (typeof v === "number" && /^notif/.test(k)) sum += v;
  }
  return sum;
}

interface Sample {
  seconds: number;
  instructions: number;
  traps: number;
  hypercalls: number;
  interrupts: number;
  virtio: number;
  readyMs: number | null;
}

function sample(s: VmStats): Sample {
  return {
    seconds: s.seconds,
    instructions: s.instructions ?? 0,
    traps: total(s.traps),
    hypercalls: total(s.hypercalls) + (s.exits?.total ?? 0),
    interrupts: total(s.interrupts),
    virtio: virtioRequests(s),
    readyMs: s.scheduling?.readyMs ?? null,
  };
}

class Charts {
  readonly el = h("div", { class: "charts" });
  private readonly mips = new LiveChart("mips", "guest MIPS", ["MIPS"]);
  private readonly traps = new LiveChart("traps", "traps / s", ["traps"]);
  private readonly hypercalls = new LiveChart("hypercalls", "hypercalls / s (SBI calls, KVM exits)", [
    "calls",
  ]);
  private readonly interrupts = new LiveChart("interrupts", "interrupts / s", ["interrupts"]);
  private readonly virtio = new LiveChart("virtio", "virtio notifications / s (all devices)", ["requests"]);
  private readonly ready = new LiveChart("ready", "ready time (ms waiting for a CPU, per s)", ["ready"]);
  private readonly memory = new LiveChart("memory", "memory (MiB)", [
    "guest RAM",
    "in balloon",
    "guest free",
  ]);
  private last: Sample | null = null;

  constructor() {
    for (const c of this.all()) this.el.append(c.el);
  }

  private all(): LiveChart[] {
    return [this.mips, this.traps, this.hypercalls, this.interrupts, this.virtio, this.ready, this.memory];
  }

  push(vm: VmInfo, stats: VmStats): void {
    const now = sample(stats);
    const before = this.last;
    this.last = now;
    const at = Date.now() / 1000;
    const m = stats.memory;
    this.memory.push(at, [
      vm.spec.memory / MiB,
      m?.balloonActualBytes === undefined ? null : m.balloonActualBytes / MiB,
      m?.guestFreeBytes === undefined || m.guestFreeBytes === null ? null : m.guestFreeBytes / MiB,
    ]);
    // A new run starts its counters again; rates need two samples of one run, some time apart.
    if (before === null || now.seconds <= before.seconds || now.instructions < before.instructions) return;
    const dt = now.seconds - before.seconds;
    const rate = (a: number, b: number) => (a - b) / dt;
    this.mips.push(at, [rate(now.instructions, before.instructions) / 1e6]);
    this.traps.push(at, [rate(now.traps, before.traps)]);
    this.hypercalls.push(at, [rate(now.hypercalls, before.hypercalls)]);
    this.interrupts.push(at, [rate(now.interrupts, before.interrupts)]);
    this.virtio.push(at, [rate(now.virtio, before.virtio)]);
    this.ready.push(at, [
      now.readyMs === null || before.readyMs === null ? null : rate(now.readyMs, before.readyMs),
    ]);
  }

  dispose(): void {
    for (const c of this.all()) c.dispose();
  }
}

export function vmPage(main: HTMLElement, name: string, go: (hash: string) => void): () => void {
  const path = vmPath(name);
  const stateEl = h("span", { id: "vm-state" }, "…");
  const consoleState = h("span", { class: "note", id: "console-state" }, "");
  const summary = h("p", { id: "vm-summary", class: "note" });
  const buttons = Object.keys(ACTIONS).map((action) =>
    h(
      "button",
      { type: "button", id: `action-${action}`, onclick: guarded(action, () => act(action)) },
      action,
    ),
  );
  const deleteButton = h(
    "button",
    {
      type: "button",
      id: "action-delete",
      onclick: guarded("delete", async () => {
        // Polling a VM while it goes would report its absence as an error.
        clearInterval(timer);
        try {
          await api("DELETE", path);
        } catch (e) {
          timer = setInterval(poll, POLL_MS);
          throw e;
        }
        go("#/vms");
      }),
    },
    "delete",
  );
  const balloonNow = h("span", { id: "balloon-now", class: "note" });
  const balloonTarget = h("input", { type: "number", min: 0, id: "balloon-target", name: "target" });
  const balloonForm = h(
    "form",
    { id: "balloon-form" },
    h("label", { for: "balloon-target" }, "balloon target (MiB) "),
    balloonTarget,
    " ",
    h("button", { type: "submit" }, "set"),
    " ",
    balloonNow,
  );
  balloonForm.addEventListener("submit", (e) => {
    e.preventDefault();
    guarded("balloon", async () => {
      const targetBytes = Math.round((Number(balloonTarget.value) * MiB) / 4096) * 4096;
      showBalloon(await api<Balloon>("PATCH", `${path}/balloon`, { targetBytes }));
    })();
  });
  const terminalEl = h("div", { class: "terminal", id: "terminal" });
  const charts = new Charts();
  fill(
    main,
    h("h1", {}, `VM ${name} `, stateEl),
    summary,
    h("p", { class: "actions" }, ...buttons, deleteButton),
    balloonForm,
    h("div", { class: "vm-columns" }, h("div", {}, terminalEl, h("p", {}, consoleState)), charts.el),
  );
  const showBalloon = (b: Balloon | null) =>
    fill(balloonNow, b === null ? "" : `target ${mib(b.targetBytes)}, the guest holds ${mib(b.actualBytes)}`);

  let view: ConsoleView | null = null;
  let info: VmInfo | null = null;
  const render = (vm: VmInfo) => {
    info = vm;
    fill(stateEl, vm.state);
    stateEl.className = `state-${vm.state}`;
    fill(
      summary,
      `${vm.spec.arch}, engine ${vm.spec.engine}, ${vm.spec.cpus} vCPU, ${mib(vm.spec.memory)}` +
        (vm.reason ? `; failed: ${vm.reason}` : "") +
        (vm.exit ? `; last run ended: ${vm.exit.reason}` : ""),
    );
    for (const b of buttons) b.disabled = !(ACTIONS[b.textContent ?? ""] ?? []).includes(vm.state);
    balloonForm.hidden = vm.spec.balloon === undefined;
  };
  async function act(action: string) {
    render(await api<VmInfo>("POST", `${path}/actions/${action}`));
  }

  let failed = false;
  let busy = false;
  const poll = async () => {
    // A slow daemon must not pile up requests.
    if (busy) return;
    busy = true;
    try {
      const vm = await api<VmInfo>("GET", path);
      render(vm);
      if (vm.state === "running" || vm.state === "paused") {
        charts.push(vm, await api<VmStats>("GET", `${path}/stats`));
        if (vm.spec.balloon !== undefined) showBalloon(await api<Balloon>("GET", `${path}/balloon`));
      }
      failed = false;
    } catch (e) {
      if (!failed) showError(`VM ${name}`, e);
      failed = true;
    } finally {
      busy = false;
    }
  };
  let left = false;
  void poll().then(() => {
    // Not for a page already left, whose terminal element is gone.
    if (info !== null && !left) {
      view = attachConsole(terminalEl, info.id, (text) => fill(consoleState, text));
    }
  });
  let timer = setInterval(poll, POLL_MS);
  return () => {
    left = true;
    clearInterval(timer);
    view?.dispose();
    charts.dispose();
  };
}
