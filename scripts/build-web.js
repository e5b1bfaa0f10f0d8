/**
 * `npm run build:web`: the static site of Vireo in a browser tab (dist/web-site/): page.js (xterm.js
 * on the main thread), worker.js (the machine), index.html and xterm.css. Both bundles are built for
 * the browser with every Node module refused, so the build fails if a Node API reaches either of them:
 * this build is the proof that the core layers run in a browser unchanged.
 *
 * `--out DIR` builds elsewhere, `--worker FILE` bundles another worker entry (the test that a Node
 * import fails the build gives one).
 */
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({ options: { out: { type: "string" }, worker: { type: "string" } } });
const out = resolve(flags.out ?? join(root, "dist", "web-site"));
const builtins = new Set(builtinModules);

/** esbuild would only warn (or polyfill nothing) for some of these; make every one an error. */
const refuseNode = {
  name: "refuse-node",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const bare = args.path.startsWith("node:") ? args.path.slice(5) : args.path;
      if (args.path.startsWith("node:") || builtins.has(bare.split("/")[0])) {
        return {
          errors: [{ text: `Node module '${args.path}' in browser code (imported by ${args.importer})` }],
        };
      }
      return undefined;
    });
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
try {
  await build({
    entryPoints: {
      page: join(root, "src/web/browser/page/main.ts"),
      worker: resolve(flags.worker ?? join(root, "src/web/browser/worker/main.ts")),
    },
    outdir: out,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    sourcemap: true,
    minify: false,
    logLevel: "warning",
    plugins: [refuseNode],
  });
} catch {
  // esbuild has printed the errors.
  process.exit(1);
}
copyFileSync(join(root, "src/web/browser/index.html"), join(out, "index.html"));
copyFileSync(join(root, "node_modules/@xterm/xterm/css/xterm.css"), join(out, "xterm.css"));
process.stdout.write(`build:web: ${out}\n`);
