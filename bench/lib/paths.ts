import { fileURLToPath } from "node:url";

/** The repository root: this file runs as dist/bench/lib/paths.js. */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
