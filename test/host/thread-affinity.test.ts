import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { threadCpuClock } from "../../src/host/thread-cpu.js";
import { available, setThreadAffinity, threadAffinity, threadId } from "../../src/hypervisor/libc.js";
import { describe, it } from "../support/test.js";

const libcUrl = new URL("../../src/hypervisor/libc.js", import.meta.url).href;

function allowedList(tid: number): string {
  const status = readFileSync(`/proc/self/task/${tid}/status`, "utf8");
  return /^Cpus_allowed_list:\s*(.*)$/m.exec(status)?.[1] ?? "";
}

describe("thread affinity and CPU time", { skip: available() ? false : "koffi/libc not available" }, () => {
  it("pins one worker thread to one CPU and leaves the others as they were", async () => {
    const before = threadAffinity();
    const cpu = before[before.length - 1] as number;
    const worker = new Worker(
      `import { parentPort } from "node:worker_threads";
       const l = await import(${JSON.stringify(libcUrl)});
       l.setThreadAffinity([${cpu}]);
       parentPort.postMessage({ tid: l.threadId(), cpus: l.threadAffinity() });
       parentPort.once("message", () => process.exit(0));`,
      { eval: true },
    );
    const got = await new Promise<{ tid: number; cpus: number[] }>((resolve) =>
      worker.once("message", resolve),
    );
    assert.deepEqual(got.cpus, [cpu]);
    assert.equal(allowedList(got.tid), String(cpu), "the kernel's view of the worker thread");
    assert.deepEqual(threadAffinity(), before, "this thread is not affected");
    assert.notEqual(allowedList(threadId()), "", "this thread's own entry is readable");
    worker.postMessage("done");
    await new Promise((resolve) => worker.once("exit", resolve));
    assert.throws(() => setThreadAffinity([-1]), /no host CPU/);
  });

  it("reads this thread's CPU time, which grows with work and not with sleep", async () => {
    const clock = threadCpuClock();
    if (clock === null) return;
    const t0 = clock();
    await new Promise((r) => setTimeout(r, 200));
    const slept = clock() - t0;
    let x = 0;
    const t1 = clock();
    for (let i = 0; i < 5e7; i++) x += i;
    const worked = clock() - t1;
    assert.ok(x > 0);
    assert.ok(worked > slept, `worked ${worked} ms vs slept ${slept} ms of CPU`);
  });
});
