/**
 * GET /metrics: Prometheus text from a registry of the daemon's own (never prom-client's global one,
 * so that two daemons in one process, as in tests, do not collide). Per-VM values are read from the
 * manager at scrape time, so a deleted VM's series disappear with it.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { VmManager } from "../manager/manager.js";

const STATES = ["created", "running", "paused", "stopped", "failed"] as const;

export function metricsRegistry(manager: VmManager): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "vireo_daemon_" });
  const labelNames = ["vm"] as const;
  new Gauge({
    name: "vireo_vm_state",
    help: "1 for the VM's current state, 0 for the others",
    labelNames: ["vm", "state"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const vm of manager.list()) {
        for (const s of STATES) this.set({ vm: vm.name, state: s }, vm.state === s ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: "vireo_vm_vcpus",
    help: "vCPUs the VM is defined with",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const vm of manager.list()) this.set({ vm: vm.name }, vm.spec.cpus);
    },
  });
  new Gauge({
    name: "vireo_vm_memory_bytes",
    help: "Guest memory the VM is defined with",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const vm of manager.list()) this.set({ vm: vm.name }, vm.spec.memory);
    },
  });
  new Counter({
    name: "vireo_vm_instructions_total",
    help: "Guest instructions retired by the current or last run (interpreter only; restarts at 0 with each start)",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const vm of manager.list()) {
        let n: number | undefined;
        try {
          n = manager.stats(vm.id).instructions;
        } catch {
          // A VM whose stats throw is reported failed by the manager; it just has no sample here.
        }
        if (n !== undefined) this.inc({ vm: vm.name }, n);
      }
    },
  });
  new Counter({
    name: "vireo_vm_console_bytes_total",
    help: "Bytes the VM has written to its console since it was defined",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const vm of manager.list()) this.inc({ vm: vm.name }, manager.console(vm.id).written);
    },
  });
  return registry;
}
