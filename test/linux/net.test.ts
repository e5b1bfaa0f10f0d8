import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { VirtioNet } from "../../src/devices/virtio/net/virtio-net.js";
import { InterpreterEngine, type RunResult } from "../../src/engines/interpreter.js";
import { parseLinuxImage } from "../../src/machine/loader/linux-image.js";
import { VirtBoard } from "../../src/machine/riscv-virt/board.js";
import { bootLinux } from "../../src/machine/riscv-virt/linux-boot.js";
import { VmGroup } from "../../src/manager/vm-group.js";
import { defaultMac, formatMac } from "../../src/net/mac.js";
import { VirtualSwitch } from "../../src/net/switch.js";
import { riscv64Image } from "../support/guest-image.js";
import { before, describe, test } from "../support/test.js";

/**
 * Two Debian guests in this process, each with a virtio-net NIC on one in-process virtual switch,
 * running at the same time on this thread (VmGroup): A (10.0.2.1) and B (10.0.2.2) configure eth0 from
 * a check-mode `vireo.run` snippet, wait until the other answers, then `ping -c 3` it. Each prints
 * NET-DONE and sleeps (so it keeps answering the other's pings); the test stops both once both are
 * done.
 */
const TIMEOUT_MS = 240_000;
const MEMORY = 256 * 2 ** 20;
const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
let image: { kernel: Uint8Array; initrd: Uint8Array; kernelPath: string } | null = null;
let hasNetModule = false;

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

interface Vm {
  name: string;
  board: VirtBoard;
  nic: VirtioNet;
  engine: InterpreterEngine;
  output: () => string;
}

function makeVm(name: string, index: number, sw: VirtualSwitch, self: string, peer: string): Vm {
  const { kernel, initrd, kernelPath } = image as NonNullable<typeof image>;
  const bytes: number[] = [];
  const board = new VirtBoard({ memory: MEMORY, cpus: 1, console: { write: (b) => bytes.push(b) } });
  const nic = new VirtioNet(sw.connect(name), { mac: defaultMac(index, 0) });
  board.virtio.attach(nic);
  const run = Buffer.from(snippet(self, peer)).toString("base64");
  bootLinux(board, {
    kernel: parseLinuxImage(kernel, kernelPath),
    initrd,
    bootargs: `console=ttyS0 earlycon=sbi vireo.check=1 vireo.run=${run}`,
    firmware: null,
  });
  const engine = new InterpreterEngine(board);
  return {
    name,
    board,
    nic,
    engine,
    output: () => Buffer.from(bytes).toString("latin1").replaceAll("\r", ""),
  };
}

describe("two VMs on an in-process virtual switch", () => {
  before(async () => {
    if (!hasApt) return;
    const paths = await riscv64Image();
    image = {
      kernel: readFileSync(paths.kernel),
      initrd: readFileSync(paths.initrd),
      kernelPath: paths.kernel,
    };
    hasNetModule = gunzipSync(image.initrd).includes("virtio_net.ko");
  });

  test("ping each other, running at the same time in one process", {
    timeout: TIMEOUT_MS + 30_000,
  }, async (t) => {
    if (!image) return t.skip("apt-get is not available to fetch the Debian image");
    if (!hasNetModule) return t.skip("the default initramfs carries no virtio_net module");
    const sw = new VirtualSwitch("lan");
    const a = makeVm("a", 0, sw, "10.0.2.1", "10.0.2.2");
    const b = makeVm("b", 1, sw, "10.0.2.2", "10.0.2.1");
    const group = new VmGroup<RunResult>();
    group.add(a.name, a.engine);
    group.add(b.name, b.engine);
    // Stop both once both are done (or one ended on its own, or time is up).
    const done = (vm: Vm) => vm.output().includes("NET-DONE");
    const ended = new Set<string>();
    const poll = setInterval(() => {
      if ((done(a) || ended.has("a")) && (done(b) || ended.has("b"))) group.stop();
    }, 100);
    const deadline = setTimeout(() => group.stop(), TIMEOUT_MS);
    const started = performance.now();
    let results: Map<string, RunResult>;
    try {
      results = await group.run((name) => {
        ended.add(name);
        // A guest that ended early (a panic, a failed check) leaves the other pinging nothing.
        if (!done(name === "a" ? a : b)) group.stop();
      });
    } finally {
      clearInterval(poll);
      clearTimeout(deadline);
    }
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`both guests done in ${seconds.toFixed(1)} s`);
    for (const vm of [a, b]) {
      const out = vm.output();
      const context = `VM ${vm.name}: ${JSON.stringify(results.get(vm.name))} stats ${JSON.stringify(vm.nic.stats)}\n--- console (tail)\n${out.slice(-3000)}`;
      assert.deepEqual(results.get(vm.name), { reason: "stopped" }, context);
      assert.match(out, new RegExp(`^CHECK virtio-net=eth0 mac=${formatMac(vm.nic.mac)}$`, "m"), context);
      assert.match(out, /^3 packets transmitted, 3 packets received, 0% packet loss$/m, context);
      assert.match(out, /^round-trip min\/avg\/max = [\d.]+\/[\d.]+\/[\d.]+ ms$/m, context);
      assert.equal(vm.nic.stats.txMalformed, 0, context);
      assert.equal(vm.nic.stats.rxMalformed + vm.nic.stats.rxBufferTooSmall, 0, context);
    }
    assert.match(a.output(), /^64 bytes from 10\.0\.2\.2: seq=\d+ ttl=64/m);
    assert.match(b.output(), /^64 bytes from 10\.0\.2\.1: seq=\d+ ttl=64/m);
    // The switch learned both stations and forwarded the pings as unicast.
    assert.equal(sw.lookup(a.nic.mac)?.name, "a");
    assert.equal(sw.lookup(b.nic.mac)?.name, "b");
    assert.ok(sw.counters.unicast >= 12, `unicast ${sw.counters.unicast}`);
    assert.equal(sw.ports[0]?.counters.inErrors, 0);
  });
});
