/**
 * The KVM engine in-process: stopping vCPUs that never exit on their own (a kick is immediate_exit plus
 * SIGUSR2), VM start-up latency, and that a stopped VM leaves nothing behind that keeps the process alive.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { KvmEngine } from "../../src/engines/kvm/engine.js";
import { X86MicroVm } from "../../src/machine/x86-microvm/board.js";
import { parseBzImage } from "../../src/machine/x86-microvm/bzimage.js";
import { describe, test } from "../support/test.js";
import { guest, guestImages, kvmUnavailable } from "./support.js";

const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();
if (why !== undefined) console.log(`# skipping KVM engine tests: ${why}`);

function boot(
  name: string,
  cpus: number,
  onOutput: (text: string) => void,
): { board: X86MicroVm; engine: KvmEngine } {
  let text = "";
  const board = X86MicroVm.create({
    memory: 64 * 2 ** 20,
    cpus,
    console: {
      write(byte) {
        text += String.fromCharCode(byte);
        onOutput(text);
      },
    },
  });
  const path = guest(name);
  board.loadLinux(parseBzImage(readFileSync(path), path), null, "");
  return { board, engine: new KvmEngine(board) };
}

describe("KVM engine", { skip: why }, () => {
  for (const cpus of [1, 2]) {
    test(`stops ${cpus} vCPU(s) spinning in the guest with interrupts off`, async () => {
      let stopAsked = 0;
      const { board, engine } = boot("spin", cpus, (text) => {
        if (text === "spinning\n") {
          // Let it spin a little inside the guest first.
          setTimeout(() => {
            stopAsked = performance.now();
            engine.stop();
          }, 100);
        }
      });
      try {
        const result = await engine.run();
        assert.deepEqual(result, { reason: "stopped" });
        const stopMs = performance.now() - stopAsked;
        assert.ok(stopAsked > 0, "the guest never said it was spinning");
        // No bound on the time (tests hold on any machine): a vCPU that never stops hangs the run,
        // which the test's own timeout turns into a failure.
        console.log(`# ${cpus} vCPU(s) stopped ${stopMs.toFixed(0)} ms after the request`);
      } finally {
        board.close();
      }
    });
  }

  test("a stop before the guest runs at all ends cleanly", async () => {
    const { board, engine } = boot("spin", 2, () => {});
    try {
      const running = engine.run();
      engine.stop();
      assert.deepEqual(await running, { reason: "stopped" });
    } finally {
      board.close();
    }
  });

  test("a stop requested before run() ends the run at once", async () => {
    const { board, engine } = boot("spin", 1, () => {});
    try {
      engine.stop();
      assert.deepEqual(await engine.run(), { reason: "stopped" });
    } finally {
      board.close();
    }
  });

  test("VM creation to the guest's first exit is recorded (and printed)", async () => {
    const created = performance.timeOrigin + performance.now();
    const { board, engine } = boot("hello", 1, () => {});
    try {
      const result = await engine.run();
      assert.equal(result.reason, "reboot");
      const [first] = engine.counters();
      assert.ok(first !== undefined && first.firstExitTime > created);
      const ms = (first?.firstExitTime ?? 0) - created;
      console.log(`# VM create to first guest exit: ${ms.toFixed(1)} ms`);
    } finally {
      board.close();
    }
  });
});
