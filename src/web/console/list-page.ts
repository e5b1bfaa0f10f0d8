/**
 * The VM list, live: the daemon's event stream (GET /events) says when a VM comes, goes or changes
 * state; CPU % comes from each running VM's scheduler figures, polled.
 */
import { api, type VmInfo, type VmStats, vmPath } from "./api.js";
import { fill, h, mib } from "./dom.js";
import { showError } from "./errors.js";

const POLL_MS = 2000;

/** CPU time charged to a VM between two polls, as a share of one host CPU. */
class CpuMeter {
  private readonly last = new Map<string, { cpuMs: number; at: number }>();

  percent(id: string, stats: VmStats | null): string {
    const cpuMs = stats?.scheduling?.cpuMs;
    if (cpuMs === undefined) return "–";
    const now = performance.now();
    const before = this.last.get(id);
    this.last.set(id, { cpuMs, at: now });
    if (before === undefined || now <= before.at) return "…";
    return `${(((cpuMs - before.cpuMs) / (now - before.at)) * 100).toFixed(0)}%`;
  }
}

export function listPage(main: HTMLElement): () => void {
  const body = h("tbody", {});
  const status = h("p", { class: "note" }, "connecting to the event stream…");
  fill(
    main,
    h("h1", {}, "Virtual machines"),
    h("p", {}, h("a", { href: "#/create" }, "Create a VM")),
    h(
      "table",
      { id: "vm-table" },
      h(
        "thead",
        {},
        h("tr", {}, ...["name", "state", "engine", "vCPUs", "memory", "CPU"].map((c) => h("th", {}, c))),
      ),
      body,
    ),
    status,
  );
  const cpu = new CpuMeter();
  let failed = false;
  const load = async () => {
    try {
      const vms = await api<VmInfo[]>("GET", "/vms");
      const stats = await Promise.all(
        vms.map((vm) =>
          vm.state === "running" || vm.state === "paused"
            ? api<VmStats>("GET", `${vmPath(vm.id)}/stats`).catch(() => null)
            : Promise.resolve(null),
        ),
      );
      fill(
        body,
        ...vms.map((vm, i) =>
          h(
            "tr",
            { "data-vm": vm.name },
            h("td", {}, h("a", { href: `#/vm/${encodeURIComponent(vm.name)}` }, vm.name)),
            h("td", { class: `state-${vm.state}` }, vm.state + (vm.reason ? `: ${vm.reason}` : "")),
            h("td", {}, vm.spec.engine),
            h("td", { class: "num" }, vm.spec.cpus),
            h("td", { class: "num" }, mib(vm.spec.memory)),
            h("td", { class: "num" }, cpu.percent(vm.id, stats[i] ?? null)),
          ),
        ),
      );
      if (vms.length === 0) fill(body, h("tr", {}, h("td", { colspan: 6 }, "No VMs yet.")));
      failed = false;
    } catch (e) {
      if (!failed) showError("VM list", e);
      failed = true;
    }
  };
  void load();
  const timer = setInterval(load, POLL_MS);
  const events = new EventSource("/events");
  events.onopen = () => fill(status, "live: the daemon's events refresh this list");
  events.onerror = () =>
    fill(status, "the event stream dropped; the browser reconnects (the list still polls)");
  for (const type of ["created", "deleted", "state"]) events.addEventListener(type, () => void load());
  return () => {
    clearInterval(timer);
    events.close();
  };
}
