/**
 * `vireo` loads what its command needs and no more (issue 10's whole-process benchmark pays for every
 * module at start-up): `vireo run` and `--help` go without the daemon's stack (fastify, prom-client,
 * ws, OpenTelemetry, src/api, src/manager), and help goes without the VM stack and TypeBox too. The
 * modules are read from the process itself (module-log.ts), never from a time; a control run of
 * `vireo daemon --openapi` shows that the same log does see each of them where they are loaded.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "../support/test.js";
import { repoRoot, vireoMain } from "./vireo.js";

const hook = fileURLToPath(new URL("./module-log.js", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "vireo-startup-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** The daemon's stack: a path containing one of these is loaded only by `vireo daemon`. */
const DAEMON_STACK = [
  "/node_modules/fastify/",
  "/node_modules/@fastify/",
  "/node_modules/prom-client/",
  "/node_modules/ws/",
  "/node_modules/@opentelemetry/",
  "/dist/src/api/",
  "/dist/src/manager/",
];
/** Constants only (the daemon's defaults that its --help prints): loading it loads nothing else. */
const ALLOWED = ["/dist/src/manager/defaults.js"];

let runs = 0;
/** `vireo ARGS…` with the module log: its result and every module path it loaded. */
function loadedBy(...args: string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
  modules: string[];
} {
  const log = join(scratch, `modules-${runs++}.txt`);
  const r = spawnSync(process.execPath, ["--import", hook, vireoMain, ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, VIREO_MODULE_LOG: log },
  });
  const modules = readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("node:"))
    .map((line) => (line.startsWith("file:") ? fileURLToPath(line) : line));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, modules: [...new Set(modules)] };
}

function offending(modules: readonly string[], patterns: readonly string[]): string[] {
  return modules.filter((m) => patterns.some((p) => m.includes(p)) && !ALLOWED.some((a) => m.endsWith(a)));
}

function assertLoaded(modules: readonly string[], patterns: readonly string[]): void {
  for (const p of patterns)
    assert.ok(
      modules.some((m) => m.includes(p)),
      `${p} not loaded`,
    );
}

describe("vireo start-up", () => {
  test("vireo run boots a bare-metal guest without the daemon's stack", () => {
    const r = loadedBy("run", "--bios", "none", "--kernel", "demo/hello.elf");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Hello from a RISC-V guest/);
    // The log does see this run's own modules, CommonJS (commander's CJS core) and ESM alike.
    assertLoaded(r.modules, [
      "/dist/src/cli/run-guest.js",
      "/dist/src/vm/create.js",
      "/node_modules/commander/",
    ]);
    assert.deepEqual(offending(r.modules, DAEMON_STACK), []);
  });

  test("--help loads neither the daemon's stack nor the VM stack nor TypeBox", () => {
    for (const args of [["--help"], ["run", "--help"], ["vm", "create", "--help"], ["daemon", "--help"]]) {
      const r = loadedBy(...args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Usage: vireo/);
      const heavy = [...DAEMON_STACK, "/node_modules/@sinclair/", "/dist/src/vm/", "/dist/src/cpu/"];
      assert.deepEqual(offending(r.modules, heavy), [], `vireo ${args.join(" ")}`);
    }
  });

  test("control: the log sees each of the daemon's packages where they are loaded", () => {
    const r = loadedBy("daemon", "--openapi");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /"openapi"/);
    assertLoaded(r.modules, DAEMON_STACK);
  });
});
