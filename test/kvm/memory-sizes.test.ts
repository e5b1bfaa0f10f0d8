/**
 * x86_64 guests with RAM sizes around 2^31 and 2^32 bytes, and across the 3-4 GiB hole: the `ram` test
 * guest finds the end of RAM in its e820 table and uses the last page (mapping it when above 4 GiB).
 * KVM backs only the pages the guest touches, so each size costs the host a few pages.
 */
import assert from "node:assert/strict";
import { describe, test } from "../support/test.js";
import { describeRun, guest, guestImages, kvmUnavailable, vireo } from "./support.js";

const GiB = 2 ** 30;
const why =
  kvmUnavailable() ??
  (() => {
    const images = guestImages();
    return "error" in images ? images.error : undefined;
  })();

/** --memory, and where RAM ends: sizes past 3 GiB continue at 4 GiB, above the hole. */
const SIZES: [string, number][] = [
  ["2097148K", 2 * GiB - 4096],
  ["2G", 2 * GiB],
  ["2097156K", 2 * GiB + 4096],
  ["3G", 3 * GiB],
  ["3145732K", 4 * GiB + 4096],
  ["4194300K", 5 * GiB - 4096],
  ["4G", 5 * GiB],
  ["4194308K", 5 * GiB + 4096],
];

describe("x86_64 --memory sizes", { skip: why }, () => {
  test("the guest finds and uses the last RAM page at sizes near 2^31 and 2^32", {
    timeout: 300_000,
  }, async () => {
    for (const [text, end] of SIZES) {
      const r = await vireo(["run", "--arch", "x86_64", "--kernel", guest("ram"), "--memory", text]);
      assert.equal(r.status, 0, `--memory ${text}: ${describeRun(r)}`);
      assert.equal(r.stdout.replaceAll("\r", ""), `RAM end ${end}\n`, `--memory ${text}`);
    }
  });
});
