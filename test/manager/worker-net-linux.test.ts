/**
 * Two Debian guests, each a riscv64 worker VM with a NIC
 * on the daemon's `switch:lan`, configure eth0 from a check-mode `vireo.run` snippet, wait until the
 * other answers, `ping -c 3` it, print NET-DONE and sleep. The switch is in this thread; the guests'
 * frames cross to it through their workers' frame links.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { vmWorkerEntry } from "../../src/cli/vm-worker.js";
import { VmManager } from "../../src/manager/manager.js";
import { parseMac } from "../../src/net/mac.js";
import { SwitchRegistry } from "../../src/net/switch.js";
import { sleep } from "../api/support.js";
import { riscv64Image } from "../support/guest-image.js";
import { after, before, describe, test } from "../support/test.js";

const TIMEOUT_MS = 240_000;
const MEMORY = 256 * 2 ** 20;
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;

function snippet(self: string, peer: string): string {
  return [
    `ip addr add ${self}/24 dev eth0`,
    "ip link set eth0 up",
    "i=0",
    `while [ $i -lt 120 ] && ! ping -c 1 -W 1 ${peer} >/dev/null 2>&1; do i=$((i+1)); done`,
    `ping -c 3 -W 5 ${peer}`,
    "echo NET-DONE",
    "sleep 600",
  ].join("\n");
}

describe("two Linux worker VMs on the daemon's switch", () => {
  let image: { kernel: string; initrd: string } | null = null;
  let hasNetModule = false;
  let manager: VmManager | null = null;
  before(async () => {
    if (!hasApt) return;
    const paths = await riscv64Image();
    image = { kernel: paths.kernel, initrd: paths.initrd };
    hasNetModule = gunzipSync(readFileSync(paths.initrd)).includes("virtio_net.ko");
  });
  after(() => manager?.shutdown(0));

  test("ping each other across their worker threads", { timeout: TIMEOUT_MS + 60_000 }, async (t) => {
    if (image === null) return t.skip("apt-get is not available to fetch the Debian image");
    if (!hasNetModule) return t.skip("the default initramfs carries no virtio_net module");
    const switches = new SwitchRegistry();
    const logs: string[] = [];
    manager = await VmManager.open({
      stateDir: null,
      log: (m) => logs.push(m),
      host: (console) => nodeVmHost({ console, switches }),
      vmWorker: vmWorkerEntry,
    });
    const vms = [
      { name: "a", mac: "52:54:00:00:01:0a", self: "10.0.2.1", peer: "10.0.2.2" },
      { name: "b", mac: "52:54:00:00:01:0b", self: "10.0.2.2", peer: "10.0.2.1" },
    ];
    for (const vm of vms) {
      const run = Buffer.from(snippet(vm.self, vm.peer)).toString("base64");
      manager.create({
        name: vm.name,
        arch: "riscv64",
        engine: "auto",
        cpus: 1,
        memory: MEMORY,
        boot: {
          kernel: image.kernel,
          initrd: image.initrd,
          cmdline: `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${run}`,
        },
        drives: [],
        nics: [{ backend: "switch:lan", mac: vm.mac }],
        rng: false,
        console: false,
        virtioRing: "split",
      });
      await manager.act(vm.name, "start");
    }
    const out = (name: string) =>
      Buffer.from(manager?.console(name).contents() ?? new Uint8Array())
        .toString("latin1")
        .replaceAll("\r", "");
    const started = performance.now();
    const finished = (name: string) =>
      out(name).includes("NET-DONE") || manager?.get(name).state !== "running";
    while (performance.now() - started < TIMEOUT_MS && !(finished("a") && finished("b"))) await sleep(250);
    t.diagnostic(`both guests done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const sw = switches.get("lan");
    for (const vm of vms) {
      const text = out(vm.name);
      const counters: Record<string, number> = manager.stats(vm.name).nics[0]?.counters ?? {};
      const context: string = `VM ${vm.name}: ${manager.get(vm.name).state} NIC ${JSON.stringify(counters)}\n--- console (tail)\n${text.slice(-3000)}\n--- log\n${logs.join("\n")}`;
      assert.equal(manager.get(vm.name).state, "running", context);
      assert.match(text, new RegExp(`^CHECK virtio-net=eth0 mac=${vm.mac}$`, "m"), context);
      assert.match(text, /^3 packets transmitted, 3 packets received, 0% packet loss$/m, context);
      assert.match(
        text,
        new RegExp(`^64 bytes from ${vm.peer.replaceAll(".", "\\.")}: seq=\\d+ ttl=64`, "m"),
      );
      assert.equal(counters.txMalformed, 0, context);
      assert.equal((counters.rxMalformed ?? 0) + (counters.rxBufferTooSmall ?? 0), 0, context);
      assert.ok((counters.rxFrames ?? 0) >= 4 && (counters.txFrames ?? 0) >= 4, context);
      // The switch in this thread learned the station behind the worker's link.
      assert.notEqual(sw.lookup(parseMac(vm.mac) as Uint8Array), null, context);
    }
    assert.ok(sw.counters.unicast >= 12, `unicast ${sw.counters.unicast}`);
    await manager.act("a", "kill");
    await manager.act("b", "kill");
    for (let i = 0; i < 40 && sw.ports.length > 0; i++) await sleep(50);
    assert.equal(sw.ports.length, 0, "both ports unplugged once the VMs are gone");
  });
});
