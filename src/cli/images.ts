import { Command } from "commander";
import { addFlags, type FlagSpec, parsedArgs } from "./flags.js";
import type * as Verbs from "./images-verbs.js";

export const IMAGES_USAGE = `usage: vireo images fetch [--arch riscv64|x86_64] [--force] [--keep-debs] [--kernel-version V]
       vireo images list
       vireo images path [--arch riscv64|x86_64]
x86_64 (alias amd64) comes from the system's own apt sources (an amd64 Debian host).
The kernel is the suite's current one; --kernel-version V pins another the package lists still carry
(V: 6.12.107, 6.12.107-1 or 6.12.107+deb13-riscv64). A pinned image stays until fetched again with
another --kernel-version or --force (which goes back to the current kernel).`;

const ARCH_FLAG: FlagSpec = {
  arch: { kind: "value", arg: "ARCH", help: "riscv64 (default) or x86_64 (alias amd64)" },
};
const FETCH_FLAGS: FlagSpec = {
  ...ARCH_FLAG,
  force: { kind: "switch", help: "fetch again even when the cache is complete (back to the current kernel)" },
  "keep-debs": { kind: "switch", help: "keep the downloaded .deb packages in the cache" },
  "kernel-version": { kind: "value", arg: "V", help: "pin another kernel the package lists still carry" },
};

/** `vireo images …`: fetch, list and locate the cached guest images (kernel + initramfs). */
export function imagesCommand(done: (status: number) => void): Command {
  const images = new Command("images").description("fetch, list and locate the cached guest images");
  images.addHelpText("after", `\n${IMAGES_USAGE}`);
  // The image code (downloads, .deb unpacking, the cache) is loaded when a verb runs, not for help.
  const sub = (name: string, description: string, flags: FlagSpec, verb: keyof typeof Verbs) => {
    const cmd = addFlags(new Command(name).description(description), flags);
    images.addCommand(
      cmd.action(async () => {
        const verbs = await import("./images-verbs.js");
        done(await verbs[verb](parsedArgs(cmd, flags)));
      }),
    );
  };
  sub("fetch", "download and build a guest image into the cache", FETCH_FLAGS, "fetchCommand");
  sub("list", "list the cached guest images", {}, "listCommand");
  sub("path", "print the directory of an arch's image", ARCH_FLAG, "pathCommand");
  return images;
}
