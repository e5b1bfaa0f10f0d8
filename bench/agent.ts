/**
 * Guest agent benchmark (issue 14): the default Debian riscv64 guest in a worker VM of an in-process
 * VmManager, its qemu-ga reached over vsock, driven through the daemon's API on a Unix socket as a
 * client would. Once the agent answers: `POST /vms/{id}/exec` of `true` back to back (round trip, p50
 * and p99 by nearest rank), then a 4 MiB file `PUT` into the guest's /tmp and `GET` back out (MB/s).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "../src/api/app.js";
import { nodeVmHost } from "../src/cli/vm-host.js";
import { vmWorkerEntry } from "../src/cli/vm-worker.js";
import { ensureRiscv64Image } from "../src/images/riscv64.js";
import { VmManager } from "../src/manager/manager.js";
import { SwitchRegistry } from "../src/net/switch.js";
import type { BenchOptions, BenchSection, SectionOutcome } from "./lib/section.js";
import { median } from "./lib/stats.js";
import { fmt, renderTable } from "./lib/table.js";

const EXECS = 50;
const FILE_BYTES = 4 * 1024 * 1024;

function call(
  socket: string,
  method: string,
  path: string,
  body?: Buffer,
  type = "application/json",
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, method, path, headers: body === undefined ? {} : { "content-type": type } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function nearestRank(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function run(options: BenchOptions): Promise<SectionOutcome> {
  const image = await ensureRiscv64Image({ quiet: true });
  const dir = mkdtempSync(join(tmpdir(), "vireo-bench-agent-"));
  const socket = join(dir, "api.sock");
  const manager = await VmManager.open({
    stateDir: null,
    log: () => {},
    host: (console) => nodeVmHost({ console, switches: new SwitchRegistry() }),
    vmWorker: vmWorkerEntry,
  });
  const app = buildApp({ manager, log: () => {} });
  try {
    await app.listen({ path: socket });
    manager.create({
      name: "bench",
      arch: "riscv64",
      engine: "auto",
      cpus: 1,
      memory: 256 * 2 ** 20,
      boot: { kernel: image.kernel, initrd: image.initrd, cmdline: "console=ttyS0 earlycon=sbi" },
      drives: [],
      nics: [],
      rng: false,
      console: false,
      virtioRing: "split",
    });
    const started = performance.now();
    await manager.act("bench", "start");
    const exec = Buffer.from(JSON.stringify({ argv: ["true"] }));
    for (;;) {
      const r = await call(socket, "POST", "/vms/bench/exec", exec);
      if (r.status === 200) break;
      if (r.status !== 409 || performance.now() - started > options.timeoutMs) {
        process.stdout.write(`agent: the guest agent did not answer (${r.status} ${r.body.toString()})\n`);
        return "failed";
      }
      await new Promise((done) => setTimeout(done, 500));
    }
    const firstAnswer = (performance.now() - started) / 1000;
    const times: number[] = [];
    for (let i = 0; i < EXECS; i++) {
      const t = performance.now();
      const r = await call(socket, "POST", "/vms/bench/exec", exec);
      times.push(performance.now() - t);
      if (r.status !== 200) return "failed";
    }
    times.sort((a, b) => a - b);
    process.stdout.write(
      `${renderTable(
        ["measure", "value"],
        [
          ["start → first exec answered (s)", fmt(firstAnswer, 1)],
          [`exec \`true\` round trip p50 (ms, ${EXECS} back to back)`, fmt(nearestRank(times, 50), 1)],
          [`exec \`true\` round trip p99 (ms, ${EXECS} back to back)`, fmt(nearestRank(times, 99), 1)],
        ],
      )}\n\n`,
    );
    const data = randomBytes(FILE_BYTES);
    const ins: number[] = [];
    const outs: number[] = [];
    for (let i = 0; i < Math.max(1, Math.min(options.runs, 2)); i++) {
      let t = performance.now();
      const put = await call(
        socket,
        "PUT",
        "/vms/bench/files?path=/tmp/bench.bin",
        data,
        "application/octet-stream",
      );
      ins.push(FILE_BYTES / 1e6 / ((performance.now() - t) / 1000));
      t = performance.now();
      const got = await call(socket, "GET", "/vms/bench/files?path=/tmp/bench.bin");
      outs.push(FILE_BYTES / 1e6 / ((performance.now() - t) / 1000));
      if (put.status !== 200 || got.status !== 200 || !got.body.equals(data)) {
        process.stdout.write(
          `agent: a copy failed or came back different (PUT ${put.status} ${put.body.toString().slice(0, 200)}, GET ${got.status} ${got.body.length} bytes, after ${((performance.now() - t) / 1000).toFixed(1)} s)\n`,
        );
        return "failed";
      }
    }
    process.stdout.write(
      `${renderTable(
        ["measure", "value"],
        [
          ["copy in, 4 MiB PUT (MB/s, median)", fmt(median(ins), 2)],
          ["copy out, 4 MiB GET (MB/s, median)", fmt(median(outs), 2)],
        ],
      )}\n`,
    );
    return "ok";
  } finally {
    await app.close();
    await manager.shutdown(0);
    rmSync(dir, { recursive: true, force: true });
  }
}

export const agentSection: BenchSection = {
  name: "agent",
  title: "Guest agent: exec and file copy (issue 14)",
  run,
};
