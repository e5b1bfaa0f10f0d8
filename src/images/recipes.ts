/**
 * Which guest image recipes exist. riscv64 comes from Debian trixie's riscv64 port; an x86_64 recipe
 * (linux-image-amd64 and busybox-static from the system's own suite and architecture) fits the same
 * Recipe interface but is not written yet.
 */
import { UserError } from "../util/errors.js";
import type { Recipe } from "./fetch.js";
import { riscv64Recipe } from "./riscv64.js";

export const IMAGE_ARCHES = ["riscv64"] as const;

export function recipeFor(arch: string): Recipe {
  switch (arch) {
    case "riscv64":
      return riscv64Recipe;
    case "x86_64":
    case "amd64":
      throw new UserError(`--arch ${arch}: not yet: only riscv64 guest images can be fetched so far`);
    default:
      throw new UserError(
        `--arch ${arch}: unknown architecture (guest images exist for: ${IMAGE_ARCHES.join(", ")})`,
      );
  }
}
