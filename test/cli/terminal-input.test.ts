/** The terminal escapes: Ctrl-A s asks for a snapshot, typed bytes around it reach the guest in order. */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { attachTerminal } from "../../src/cli/terminal-input.js";
import { test } from "../support/test.js";

class FakeTty extends EventEmitter {
  isTTY = true;
  raw = false;
  setRawMode(on: boolean): this {
    this.raw = on;
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
}

test("Ctrl-A s snapshots; Ctrl-A x quits; other bytes go to the guest", { timeout: 10_000 }, () => {
  const tty = new FakeTty();
  const events: string[] = [];
  const terminal = attachTerminal(
    tty as unknown as NodeJS.ReadStream,
    (bytes) => events.push(`guest:${Buffer.from(bytes).toString("latin1")}`),
    () => events.push("quit"),
    undefined,
    undefined,
    () => events.push("snapshot"),
  );
  assert.equal(tty.raw, true);
  tty.emit("data", Buffer.from("ab\x01scd\x01\x01"));
  tty.emit("data", Buffer.from("\x01x"));
  terminal.close();
  assert.equal(tty.raw, false);
  assert.deepEqual(events, ["guest:ab", "snapshot", "guest:cd\x01", "quit"]);
});
