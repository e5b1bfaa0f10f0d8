// Bundles the daemon's web console (src/web/console/) with esbuild into dist/web/console/: app.js
// (the page's code with xterm.js and uPlot), app.css (theirs and ours) and index.html. Run by
// `npm run build` after tsc; `vireo daemon --web` serves these three files.
import { copyFileSync, mkdirSync } from "node:fs";
import { build } from "esbuild";

const out = "dist/web/console";
mkdirSync(out, { recursive: true });
const common = { bundle: true, minify: true, sourcemap: false, logLevel: "warning", legalComments: "none" };
try {
  await build({
    ...common,
    entryPoints: ["src/web/console/main.ts"],
    outfile: `${out}/app.js`,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
  });
  await build({ ...common, entryPoints: ["src/web/console/style.css"], outfile: `${out}/app.css` });
  copyFileSync("src/web/console/index.html", `${out}/index.html`);
} catch (e) {
  process.stderr.write(`build-web-console: ${e.message}\n`);
  process.exit(1);
}
