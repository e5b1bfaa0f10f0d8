/**
 * The layers of docs/ARCHITECTURE.md, enforced: every import and export-from in src/ (static, dynamic and
 * `import("…")` types) may reach only its own folder and the layers its row of LAYERS lists, and the
 * layers that must also run in a browser worker use no Node module, package or global. A failure lists
 * each offending file:line.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "../support/test.js";
import { imports, nodeGlobals } from "./source-scan.js";

interface Layer {
  /** The folder under src/. */
  name: string;
  /** The layers its files may import; each must come earlier in the table (so there is no cycle). */
  uses: readonly string[];
  /** Must run in a browser worker: no node: imports, no packages, no Node globals. */
  browser: boolean;
}

/** Bottom to top; docs/ARCHITECTURE.md shows the same table. */
const LAYERS: readonly Layer[] = [
  { name: "util", uses: [], browser: true },
  { name: "wasm", uses: [], browser: true },
  { name: "cpu", uses: ["util", "wasm"], browser: true },
  { name: "devices", uses: ["util"], browser: true },
  { name: "net", uses: ["util", "devices"], browser: true },
  { name: "hypervisor", uses: ["util", "devices"], browser: false },
  { name: "machine", uses: ["util", "wasm", "cpu", "devices", "net", "hypervisor"], browser: true },
  {
    name: "engines",
    uses: ["util", "wasm", "cpu", "devices", "net", "hypervisor", "machine"],
    browser: false,
  },
  { name: "host", uses: ["util", "devices", "net", "hypervisor"], browser: false },
  { name: "snapshot", uses: ["util"], browser: true },
  {
    name: "vm",
    uses: ["util", "wasm", "cpu", "devices", "net", "hypervisor", "machine", "engines", "host", "snapshot"],
    browser: false,
  },
  {
    name: "manager",
    uses: [
      "util",
      "wasm",
      "cpu",
      "devices",
      "net",
      "hypervisor",
      "machine",
      "engines",
      "host",
      "vm",
      "snapshot",
    ],
    browser: false,
  },
  { name: "api", uses: ["util", "vm", "manager"], browser: false },
  { name: "images", uses: ["util", "machine", "host"], browser: false },
  {
    name: "cli",
    uses: [
      "util",
      "wasm",
      "cpu",
      "devices",
      "net",
      "hypervisor",
      "machine",
      "engines",
      "host",
      "vm",
      "manager",
      "api",
      "images",
      "snapshot",
    ],
    browser: false,
  },
  // Browser code: the daemon's web console (web/console, which reaches the daemon only through its HTTP
  // API) and the in-browser build (web/browser: a page and its Web Worker running the machine).
  // Packages such as xterm.js and uPlot are fine, Node is not (the test below; the esbuild bundle of
  // `npm run build:web` refuses Node modules too).
  { name: "web", uses: ["util", "wasm", "cpu", "devices", "net", "machine", "engines"], browser: false },
  { name: "sdk", uses: ["util", "vm", "api", "cli"], browser: false },
];

interface SourceFile {
  /** Relative to the repository root, with forward slashes: "src/cpu/riscv/hart.ts". */
  path: string;
  text: string;
}

/** Every violation in `files`, as "path:line: what is wrong". */
function checkLayers(files: readonly SourceFile[], layers: readonly Layer[] = LAYERS): string[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const problems: string[] = [];
  for (const file of files) {
    const parts = file.path.split("/");
    const layer = parts.length > 2 ? byName.get(parts[1] as string) : undefined;
    if (layer === undefined) {
      problems.push(`${file.path}:1: not in a layer of the table in test/architecture/layers.test.ts`);
      continue;
    }
    for (const { specifier, line } of imports(file.text)) {
      const at = `${file.path}:${line}`;
      if (specifier === null) {
        problems.push(`${at}: import() of a computed specifier (the layer test cannot check it)`);
      } else if (specifier.startsWith(".")) {
        const target = posix.normalize(posix.join(posix.dirname(file.path), specifier)).split("/");
        const into = target[1] as string;
        if (target[0] !== "src" || target.length < 3) {
          problems.push(`${at}: '${specifier}' leaves src/`);
        } else if (into !== layer.name && !layer.uses.includes(into)) {
          problems.push(`${at}: ${layer.name}/ may not import ${into}/ ('${specifier}')`);
        }
      } else if (layer.browser) {
        problems.push(`${at}: '${specifier}' in ${layer.name}/, which must run in a browser worker`);
      }
    }
    if (layer.browser) {
      for (const { name, line } of nodeGlobals(file.text)) {
        problems.push(
          `${file.path}:${line}: Node global '${name}' in ${layer.name}/, which must run in a browser worker`,
        );
      }
    }
  }
  return problems;
}

function sources(root: string, dir: string): SourceFile[] {
  const out: SourceFile[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...sources(root, path));
    else if (entry.name.endsWith(".ts")) out.push({ path, text: readFileSync(join(root, path), "utf8") });
  }
  return out;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

describe("layers", () => {
  test("the table is an order: every layer uses only layers below it", { timeout: 10_000 }, () => {
    const seen = new Set<string>();
    for (const layer of LAYERS) {
      for (const used of layer.uses) assert.ok(seen.has(used), `${layer.name} uses ${used}, not below it`);
      seen.add(layer.name);
    }
  });

  test("every folder of src/ is a layer of the table", { timeout: 10_000 }, () => {
    const folders = readdirSync(join(root, "src"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    const missing = folders.filter((f) => !LAYERS.some((l) => l.name === f));
    assert.deepEqual(missing, [], `src/ folders missing from the table: ${missing.join(", ")}`);
  });

  test("every import in src/ follows the table", { timeout: 30_000 }, () => {
    const files = sources(root, "src");
    assert.ok(files.length > 100, `only ${files.length} source files found under ${root}${sep}src`);
    const problems = checkLayers(files);
    assert.deepEqual(problems, [], `layer violations:\n${problems.join("\n")}`);
  });

  test("vm/ reaches the host only through VmHost: no node: module, no Node global", {
    timeout: 10_000,
  }, () => {
    // Packages (TypeBox) are fine here; vm/ is not browser-bound as a whole (x86 loads the KVM engine).
    const problems: string[] = [];
    for (const file of sources(root, "src/vm")) {
      for (const { specifier, line } of imports(file.text)) {
        if (specifier?.startsWith("node:")) problems.push(`${file.path}:${line}: '${specifier}'`);
      }
      for (const { name, line } of nodeGlobals(file.text)) problems.push(`${file.path}:${line}: ${name}`);
    }
    assert.deepEqual(problems, [], `Node APIs in src/vm/:\n${problems.join("\n")}`);
  });

  test("web/ runs in a browser: no node: module, no Node global", { timeout: 10_000 }, () => {
    const problems: string[] = [];
    for (const file of sources(root, "src/web")) {
      for (const { specifier, line } of imports(file.text)) {
        if (specifier?.startsWith("node:")) problems.push(`${file.path}:${line}: '${specifier}'`);
      }
      for (const { name, line } of nodeGlobals(file.text)) problems.push(`${file.path}:${line}: ${name}`);
    }
    assert.deepEqual(problems, [], `Node APIs in src/web/:\n${problems.join("\n")}`);
  });

  test("a wrong import, a Node module and a Node global are each reported with file:line", {
    timeout: 10_000,
  }, () => {
    const files: SourceFile[] = [
      {
        path: "src/cpu/riscv/bad.ts",
        text: [
          "// importing '../../engines/interpreter.js' in a comment is fine",
          'import { InterpreterEngine } from "../../engines/interpreter.js";',
          'import type { Hart } from "./hart.js";',
          "const text = `process.env in a string is fine \u0024{process.env.HOME}`;",
          'export { thing } from "../../machine/mmio-bus.js";',
          'const m = /import x from "node:fs"/;',
          'const lazy = await import("../../host/entropy.js");',
          "const computed = await import(name);",
        ].join("\n"),
      },
      {
        path: "src/devices/leak.ts",
        text: ['import { readFileSync } from "node:fs";', "const b = Buffer.from([1]);", "/* Buffer */"].join(
          "\n",
        ),
      },
      { path: "src/engines/kvm/fine.ts", text: 'import { Worker } from "node:worker_threads";' },
      { path: "src/stray.ts", text: "" },
    ];
    assert.deepEqual(checkLayers(files), [
      "src/cpu/riscv/bad.ts:2: cpu/ may not import engines/ ('../../engines/interpreter.js')",
      "src/cpu/riscv/bad.ts:5: cpu/ may not import machine/ ('../../machine/mmio-bus.js')",
      "src/cpu/riscv/bad.ts:7: cpu/ may not import host/ ('../../host/entropy.js')",
      "src/cpu/riscv/bad.ts:8: import() of a computed specifier (the layer test cannot check it)",
      "src/cpu/riscv/bad.ts:4: Node global 'process' in cpu/, which must run in a browser worker",
      "src/devices/leak.ts:1: 'node:fs' in devices/, which must run in a browser worker",
      "src/devices/leak.ts:2: Node global 'Buffer' in devices/, which must run in a browser worker",
      "src/stray.ts:1: not in a layer of the table in test/architecture/layers.test.ts",
    ]);
  });
});
