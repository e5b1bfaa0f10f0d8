/**
 * The start of the Debian riscv64 kernel's boot (built-in SBI) in lockstep: interpreter vs translator
 * with a low hotness threshold, compared at every unit: the first 200 M instructions, as issue 10 asks
 * (38 s on a quiet 2-core development VM; VIREO_LOCKSTEP_INSNS=N runs another count).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseLinuxImage } from "../../../src/machine/loader/linux-image.js";
import { bootLinux } from "../../../src/machine/riscv-virt/linux-boot.js";
import { riscv64Image } from "../../support/guest-image.js";
import { before, describe, test } from "../../support/test.js";
import { boardLockstep } from "./boards.js";

const hasApt = spawnSync("apt-get", ["--version"]).status === 0;
let image: { kernel: string; initrd: string } | null = null;
const INSNS = Number(process.env.VIREO_LOCKSTEP_INSNS ?? 200_000_000);

describe("translator: Debian kernel boot in lockstep", () => {
  before(async () => {
    if (hasApt) image = await riscv64Image();
  });

  test(`the first ${INSNS} instructions run the same translated and interpreted`, {
    timeout: 600_000,
  }, (t) => {
    if (image === null) return t.skip("apt-get is not available to fetch the Debian image");
    const kernel = parseLinuxImage(new Uint8Array(readFileSync(image.kernel)), image.kernel);
    const initrd = new Uint8Array(readFileSync(image.initrd));
    const r = boardLockstep(
      512 << 20,
      (board) => {
        bootLinux(board, {
          kernel,
          initrd,
          bootargs: "console=ttyS0 earlycon=sbi vireo.check=1",
          firmware: null,
        });
      },
      { maxInstructions: INSNS, threshold: 50, compareRam: false },
    );
    assert.equal(r.result.divergence, null);
    assert.ok(r.result.instructions >= INSNS, `stopped after ${r.result.instructions}`);
    assert.ok(r.stats.translatedRetired > INSNS / 2, `translated: ${r.stats.translatedRetired}`);
  });
});
