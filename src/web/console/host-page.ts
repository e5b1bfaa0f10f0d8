/** The host: its CPUs and memory, what running VMs hold of them, the shared CPU pool and its queue. */
import { api, type HostInfo } from "./api.js";
import { fill, h, mib } from "./dom.js";
import { showError } from "./errors.js";

const REFRESH_MS = 2000;

function row(name: string, value: string | number): HTMLTableRowElement {
  return h("tr", {}, h("th", {}, name), h("td", { class: "num" }, String(value)));
}

function render(el: HTMLElement, host: HostInfo): void {
  const s = host.scheduler;
  const g = host.memoryGovernor;
  fill(
    el,
    h(
      "table",
      { id: "host-table" },
      row("host CPUs", host.cpus),
      row("memory total", mib(host.memory.total)),
      row("memory available", mib(host.memory.free)),
      row("VMs defined", host.vms),
      row("VMs running or paused", host.committed.vms),
      row("vCPUs committed", host.committed.cpus),
      row("memory committed", mib(host.committed.memory)),
      row("shared pool CPUs", s.sharedCpus.length === 0 ? "none" : s.sharedCpus.join(", ")),
      row("shared pool mean queue length", s.meanQueueLength.toFixed(2)),
      row("dedicated CPUs", s.dedicated.map((d) => `${d.vm}: ${d.cpus.join(",")}`).join("; ") || "none"),
      g === null
        ? row("memory governor", "off")
        : row(
            "memory governor",
            `${g.rounds} rounds every ${g.intervalMs} ms; low ${mib(g.low)}, high ${mib(g.high)}` +
              (g.available === null ? "" : `; last saw ${mib(g.available)} available`),
          ),
    ),
    host.damaged.length === 0
      ? null
      : h(
          "p",
          { class: "login-error" },
          `Unreadable definitions: ${host.damaged.map((d) => `${d.file} (${d.reason})`).join("; ")}`,
        ),
  );
}

export function hostPage(main: HTMLElement): () => void {
  const body = h("div", {}, "Loading…");
  fill(main, h("h1", {}, "Host"), body);
  let failed = false;
  const load = async () => {
    try {
      render(body, await api<HostInfo>("GET", "/host"));
      failed = false;
    } catch (e) {
      // One banner per outage, not one every two seconds.
      if (!failed) showError("host", e);
      failed = true;
    }
  };
  void load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
