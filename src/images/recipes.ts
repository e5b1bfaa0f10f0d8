/**
 * Which guest image recipes exist. riscv64 comes from Debian trixie's riscv64 port (a private apt
 * configuration); x86_64 (alias amd64) from the system's own suite and architecture (x86_64.ts).
 */
import { UserError } from "../util/errors.js";
import type { Recipe } from "./fetch.js";
import { riscv64Recipe } from "./riscv64.js";
import { x86Recipe } from "./x86_64.js";

export const IMAGE_ARCHES = ["riscv64", "x86_64"] as const;

export function recipeFor(arch: string): Recipe {
  switch (arch) {
    case "riscv64":
      return riscv64Recipe;
    case "x86_64":
    case "amd64":
      return x86Recipe;
    default:
      throw new UserError(
        `--arch ${arch}: unknown architecture (guest images exist for: ${IMAGE_ARCHES.join(", ")}; amd64 = x86_64)`,
      );
  }
}
