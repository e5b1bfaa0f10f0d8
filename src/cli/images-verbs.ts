/** The verbs of `vireo images …` (the commands and their flags are in images.ts). */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { checkCache, imageDir, imagesRoot, MANIFEST, readManifest } from "../images/cache.js";
import { type FetchOptions, fetchImage } from "../images/fetch.js";
import { formatMegabytes } from "../images/progress.js";
import { recipeFor } from "../images/recipes.js";
import type { ParsedArgs } from "./flags.js";

export async function fetchCommand(args: ParsedArgs): Promise<number> {
  const recipe = recipeFor(args.values.get("arch") ?? "riscv64");
  const options: FetchOptions = {
    force: args.switches.has("force"),
    keepDebs: args.switches.has("keep-debs"),
    verify: true,
  };
  const pin = args.values.get("kernel-version");
  if (pin !== undefined) options.kernelVersion = pin;
  const r = await fetchImage(recipe, options);
  const m = r.manifest;
  const versions = m.packages
    .filter((p) => p.role !== "metapackage")
    .map((p) => `${p.name} ${p.version}`)
    .join(", ")
    .concat(m.kernelPin === undefined ? "" : `; kernel pinned to ${m.kernelPin}`);
  const named = recipe.summary ?? [
    recipe.kernel,
    recipe.initrd,
    ...(recipe.rootDisk === undefined ? [] : [recipe.rootDisk]),
  ];
  const sizes = named.map((name) => `${name} ${formatMegabytes(m.artifacts[name]?.size ?? 0)} MB`).join(", ");
  switch (r.action) {
    case "up-to-date":
      process.stdout.write(`${recipe.arch}: up to date (${versions})\n${r.dir}\n`);
      break;
    case "refreshed":
      process.stdout.write(
        `${recipe.arch}: ${recipe.rootDisk === undefined ? "initramfs" : "initramfs and root disk"} rebuilt (${r.reason}) in ${r.seconds.toFixed(1)} s\n${r.dir}\n`,
      );
      break;
    case "built":
      process.stdout.write(
        `${recipe.arch}: fetched in ${r.seconds.toFixed(1)} s: ${sizes} (${versions})\n${r.dir}\n`,
      );
      break;
  }
  return 0;
}

export function listCommand(): number {
  const root = imagesRoot();
  let names: string[] = [];
  try {
    names = readdirSync(root).filter((n) => !n.startsWith(".") && n !== "apt" && !n.includes(".old-"));
  } catch {
    // nothing cached yet
  }
  const images = names.filter((n) => statSync(join(root, n)).isDirectory()).sort();
  if (images.length === 0) {
    process.stdout.write(`no guest images in ${root} (run 'vireo images fetch')\n`);
    return 0;
  }
  for (const arch of images) {
    const dir = join(root, arch);
    const manifest = readManifest(dir);
    if (manifest === undefined) {
      process.stdout.write(`${arch}: incomplete (no readable ${MANIFEST}) in ${dir}\n`);
      continue;
    }
    const state = checkCache(dir, { artifacts: Object.keys(manifest.artifacts) });
    const status = state.state === "complete" ? "" : ` [${state.reason}]`;
    process.stdout.write(`${arch}: ${manifest.source}, created ${manifest.created}${status}\n  ${dir}\n`);
    for (const p of manifest.packages) process.stdout.write(`  package  ${p.name} ${p.version}\n`);
    if (manifest.kernelPin !== undefined) process.stdout.write(`  pinned   kernel ${manifest.kernelPin}\n`);
    if (manifest.modules !== undefined)
      process.stdout.write(`  modules  ${manifest.modules.order.join(" ")}\n`);
    for (const [name, a] of Object.entries(manifest.artifacts)) {
      process.stdout.write(
        `  file     ${name} ${formatMegabytes(a.size)} MB sha256 ${a.sha256.slice(0, 16)}…\n`,
      );
    }
    for (const deb of manifest.debs ?? []) process.stdout.write(`  kept     debs/${deb}\n`);
  }
  return 0;
}

export function pathCommand(args: ParsedArgs): number {
  const recipe = recipeFor(args.values.get("arch") ?? "riscv64");
  process.stdout.write(`${imageDir(recipe.arch)}\n`);
  return 0;
}
