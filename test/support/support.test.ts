import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "./test.js";

const here = dirname(fileURLToPath(import.meta.url));
const sources = resolve(here, "../../../test");
const support = join(here, "test.js");
// Inside the build tree, so the throw-away files resolve the project's packages (fast-check).
const scratch = mkdtempSync(join(here, ".scratch-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Runs one throw-away test file under `node --test` with the given environment. */
function runFile(body: string, env: Record<string, string>) {
  const file = join(scratch, `case-${readdirSync(scratch).length}.test.mjs`);
  writeFileSync(file, `import { test, it, before, describe } from ${JSON.stringify(support)};\n${body}\n`);
  // The child is a test run of its own, not a file of this one (node:test marks its children so).
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=tap", file], {
    encoding: "utf8",
    env: { ...parent, ...env },
    timeout: 30_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("the test wrapper", () => {
  test("no test file imports node:test directly (so every test gets a default timeout)", () => {
    const direct = walk(sources)
      .filter((f) => !f.endsWith("support/test.ts"))
      .filter((f) => /^import [^;]* from "node:test";/m.test(readFileSync(f, "utf8")));
    assert.deepEqual(direct, []);
  });

  test("a test that never ends, and a hook, fail after the default timeout", { timeout: 30_000 }, () => {
    const r = runFile(
      [
        "const hang = () => new Promise((done) => setTimeout(done, 4000));",
        "test('hangs', hang);",
        "it('hangs too', { skip: false }, hang);",
        "describe('s', () => { before(hang); it('after a hung hook', () => {}); });",
        "test('quick', () => {});",
      ].join("\n"),
      { VIREO_TEST_TIMEOUT_MS: "200", FC_SEED: "1" },
    );
    assert.notEqual(r.status, 0, r.out);
    assert.equal(r.out.match(/test timed out after 200ms/g)?.length, 2, r.out);
    // Hooks get ten times the tests' default (2 s here): the 4 s hook is cut before it could end.
    assert.match(r.out, /failureType: 'hookFailed'/, r.out);
    assert.match(r.out, /^ok \d+ - quick$/m, r.out);
  });

  test("an explicit timeout wins over the default", () => {
    const r = runFile(
      "test('slow but allowed', { timeout: 5000 }, () => new Promise((d) => setTimeout(d, 400)));",
      {
        VIREO_TEST_TIMEOUT_MS: "100",
        FC_SEED: "1",
      },
    );
    assert.equal(r.status, 0, r.out);
  });

  test("fast-check runs from FC_SEED: the same seed draws the same values, and a failure names it", () => {
    const body = [
      "import fc from 'fast-check';",
      "test('draw', () => { console.log('DRAW', JSON.stringify(fc.sample(fc.integer(), 5))); });",
      "test('fails', () => { fc.assert(fc.property(fc.integer(), (n) => n < 1000)); });",
    ].join("\n");
    const a = runFile(body, { FC_SEED: "12345" });
    const b = runFile(body, { FC_SEED: "12345" });
    const draw = (out: string) => /DRAW (\[.*\])/.exec(out)?.[1];
    assert.ok(draw(a.out), a.out);
    assert.equal(draw(a.out), draw(b.out));
    assert.notEqual(draw(runFile(body, { FC_SEED: "54321" }).out), draw(a.out));
    assert.match(a.out, /seed: 12345/, a.out);
  });

  test("without FC_SEED a seed is drawn and printed", () => {
    const env = { FC_SEED: "" };
    const r = runFile("test('t', () => {});", env);
    assert.match(r.out, /property-test seed -?\d+ \(replay: FC_SEED=-?\d+\)/, r.out);
  });
});
