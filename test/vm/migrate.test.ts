/**
 * Live migration between two riscv64 VMs of this process, over a Unix socket: a guest that rewrites 2 MiB
 * of memory every round (test/guest-daemon/scribbler.S, which checks each page holds what it wrote last)
 * moves in several passes, its RAM arrives equal, and on the target it counts on from the next round
 * with no page lost. A target that hangs up mid-way or answers garbage leaves the source running.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeVmHost } from "../../src/cli/vm-host.js";
import { connectMigration, readStart, socketChannel } from "../../src/manager/migration-socket.js";
import {
  decodeStart,
  encodeFrame,
  type Frame,
  FrameReader,
  FrameType,
} from "../../src/snapshot/migration-wire.js";
import { UserError } from "../../src/util/errors.js";
import { createVm } from "../../src/vm/create.js";
import type { RiscvVm } from "../../src/vm/riscv.js";
import { migrateOut } from "../../src/vm/riscv-migrate.js";
import { validateVmSpec } from "../../src/vm/spec.js";
import type { MigrationChannel, Vm } from "../../src/vm/vm.js";
import { bareMetalSpec, buildBareMetal, crossCompilerMissing } from "../support/bare-metal.js";
import { Lines, ticks } from "../support/console-lines.js";
import { after, before, describe, test } from "../support/test.js";

const MiB = 2 ** 20;

/** A one-connection server on a fresh Unix socket; `onSocket` gets the connection. */
function listen(path: string, onSocket: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer(onSocket);
    server.listen(path, () => resolve(server));
  });
}

const missing = crossCompilerMissing();

describe("live migration of a riscv64 VM", { skip: missing }, () => {
  let dir: string;
  let elf: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vireo-mig-"));
    elf = buildBareMetal("test/guest-daemon/scribbler.S", join(dir, "scribbler.elf"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const engine of ["interpreter", "translate"] as const) {
    test(`--engine ${engine}: a guest busy writing memory moves in passes and counts on`, {
      timeout: 120_000,
    }, async () => {
      const first = new Lines();
      const source = (await createVm(
        bareMetalSpec(`busy-${engine}`, elf, 8 * MiB, { engine }),
        nodeVmHost({ console: first }),
      )) as RiscvVm;
      source.start();
      await first.until(5);
      const second = new Lines();
      let target: RiscvVm | null = null;
      let ramEqual: boolean | null = null;
      const socketPath = join(dir, `${engine}.sock`);
      const arrived = new Promise<void>((resolve, reject) => {
        void listen(socketPath, (socket) => {
          const channel = socketChannel(socket);
          (async () => {
            const start = await readStart(channel);
            const spec = validateVmSpec({ ...(start.spec as object), name: "arrived" });
            await channel.send(encodeFrame(FrameType.ACCEPT));
            target = (await createVm(spec, nodeVmHost({ console: second }), {
              incoming: { start, next: () => channel.next() },
            })) as RiscvVm;
            // The source is paused now: its RAM is final.
            ramEqual = Buffer.compare(source.board.cpu.ram.bytes, target.board.cpu.ram.bytes) === 0;
            target.start();
            await channel.send(encodeFrame(FrameType.RUNNING));
            resolve();
          })().catch(reject);
        }).then((server) => arrived.finally(() => server.close()));
      });
      await new Promise((r) => setTimeout(r, 50));
      const result = await (source.migrate as NonNullable<Vm["migrate"]>)(await connectMigration(socketPath));
      await arrived;
      await source.wait();
      assert.equal(source.state.name, "stopped", "the source VM ends");
      assert.equal(ramEqual, true, "RAM arrived equal");
      assert.ok(result.passes >= 2, `${result.passes} passes`);
      assert.ok(result.bytes > 2 * MiB, `${result.bytes} bytes`);
      assert.ok(result.downtimeMs >= 0 && result.downtimeMs <= result.totalMs);
      const moved = target as unknown as RiscvVm;
      const before = first.text;
      await second.until(5);
      moved.kill();
      await moved.wait();
      const all = ticks(before + second.text);
      assert.deepEqual(
        all,
        all.map((_, i) => i),
        "one count from 0 across both VMs",
      );
      console.log(
        `${engine}: ${result.passes} passes, ${result.pages} pages, ${result.bytes} bytes, total ${result.totalMs.toFixed(0)} ms, downtime ${result.downtimeMs.toFixed(1)} ms, throttle ${result.throttle}`,
      );
    });
  }

  test("a target that hangs up or answers garbage: the source runs on and says why", {
    timeout: 60_000,
  }, async () => {
    const lines = new Lines();
    const vm = (await createVm(
      bareMetalSpec("stays", elf, 8 * MiB),
      nodeVmHost({ console: lines }),
    )) as RiscvVm;
    vm.start();
    await lines.until(2);
    const cases: [string, (socket: Socket) => void, RegExp][] = [
      ["hangs up after START", (s) => s.once("data", () => s.destroy()), /closed|EPIPE|ECONNRESET|reset/i],
      [
        "answers garbage",
        (s) => s.once("data", () => s.write(Buffer.from("HTTP/1.1 400 Bad\r\n\r\n"))),
        /frame type/,
      ],
      [
        "refuses",
        (s) =>
          s.once("data", () => s.write(encodeFrame(FrameType.REFUSE, new TextEncoder().encode("no room")))),
        /refused by the target: no room/,
      ],
      [
        "accepts, then hangs up mid-way",
        (s) => {
          let seen = 0;
          s.on("data", (chunk) => {
            if (seen === 0) s.write(encodeFrame(FrameType.ACCEPT));
            seen += chunk.length;
            if (seen > 64 * 1024) s.destroy();
          });
        },
        /closed|EPIPE|ECONNRESET|reset/i,
      ],
    ];
    for (const [name, behave, why] of cases) {
      const path = join(dir, `broken-${cases.findIndex((c) => c[0] === name)}.sock`);
      const server = await listen(path, behave);
      const channel = await connectMigration(path);
      await assert.rejects(
        (vm.migrate as NonNullable<Vm["migrate"]>)(channel),
        (e: unknown) => e instanceof UserError && why.test(e.message),
        name,
      );
      server.close();
      assert.equal(vm.state.name, "running", `${name}: the source runs on`);
      assert.equal(vm.board.cpu.ram.dirty, null, `${name}: tracking stopped`);
      assert.equal(vm.engine.throttle, 0, `${name}: not throttled`);
      const n = lines.count();
      await lines.until(n + 2);
    }
    vm.kill();
    await vm.wait();
    assert.deepEqual(
      ticks(lines.text),
      ticks(lines.text).map((_, i) => i),
    );
    await assert.rejects(connectMigration(join(dir, "nobody.sock")), /cannot reach the migration target/);
  });
});

describe("pre-copy passes and auto-converge", { skip: missing }, () => {
  let dir: string;
  let elf: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vireo-mig-"));
    elf = buildBareMetal("test/guest-daemon/scribbler.S", join(dir, "scribbler.elf"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a guest that dirties its working set during every pass gets throttled, and RAM arrives equal", {
    timeout: 60_000,
  }, async () => {
    const vm = (await createVm(
      bareMetalSpec("pc", elf, 8 * MiB),
      nodeVmHost({ console: new Lines() }),
    )) as RiscvVm;
    const { board, engine } = vm;
    const hart = board.cpu.harts[0] as NonNullable<(typeof board.cpu.harts)[number]>;
    // The guest runs a fixed 200 000 instructions (several rounds over its 512 pages) while each pass
    // is sent: the dirty set never shrinks, whatever the host's speed.
    board.cpu.runSlice(hart, 200_000);
    const sent: Frame[] = [];
    const reader = new FrameReader();
    const replies: Frame[] = [
      { type: FrameType.ACCEPT, payload: new Uint8Array(0) },
      { type: FrameType.RUNNING, payload: new Uint8Array(0) },
    ];
    let pausedAt = -1;
    const channel: MigrationChannel = {
      async send(frame) {
        reader.push(frame);
        for (let f = reader.take(); f !== undefined; f = reader.take()) {
          sent.push(f);
          // Paused for the last pass: the guest runs no more.
          if (f.type === FrameType.PASS_END && pausedAt < 0) board.cpu.runSlice(hart, 200_000);
        }
      },
      next: async () => replies.shift() ?? null,
      poll: () => null,
      close() {},
    };
    const result = await migrateOut(
      {
        board,
        engine,
        spec: vm.spec,
        drives: { backends: [], close: async () => {} },
        pause: () => {
          pausedAt = sent.length;
        },
        resume: () => assert.fail("resumed after a successful migration"),
      },
      channel,
      { downtimeMs: 1e-9, maxPasses: 4 },
    );
    assert.equal(result.passes, 5, "4 passes while running, then the last");
    assert.ok(result.throttle >= 0.2, `throttled (${result.throttle})`);
    assert.equal(engine.throttle, 0, "the throttle is lifted after the migration");
    assert.equal(sent.filter((f) => f.type === FrameType.PASS_BEGIN).length, 5);
    assert.ok(
      pausedAt > 0 && sent.slice(pausedAt).filter((f) => f.type === FrameType.PASS_BEGIN).length === 1,
    );
    // The frames build an equal VM on the other side.
    const frames = sent.slice(1);
    const target = (await createVm(vm.spec, nodeVmHost({ console: new Lines() }), {
      incoming: { start: decodeStart(sent[0] as Frame), next: async () => frames.shift() ?? null },
    })) as RiscvVm;
    assert.equal(Buffer.compare(board.cpu.ram.bytes, target.board.cpu.ram.bytes), 0, "RAM arrived equal");
    assert.deepEqual(
      [...(target.board.cpu.harts[0] as typeof hart).state.subarray(0, 66)],
      [...hart.state.subarray(0, 66)],
      "x registers and pc arrived",
    );
    target.kill();
    vm.kill();
  });
});
