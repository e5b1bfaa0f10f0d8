/**
 * The host terminal as the guest's keyboard: raw mode, bytes forwarded to the guest console, and the
 * QEMU-style escapes Ctrl-A x to quit, Ctrl-A c to switch consoles (when `onSwitch` is given), Ctrl-A s
 * to save a snapshot (when `onSnapshot` is), and
 * Ctrl-A Ctrl-A to send one Ctrl-A through. The escapes are read on a TTY only, unless `escapes` says
 * otherwise (`vireo vm console` driven through a pipe still needs a way to detach).
 */
export interface TerminalInput {
  /** Stops reading and restores the terminal. */
  close(): void;
}

const CTRL_A = 0x01;

export function attachTerminal(
  stdin: NodeJS.ReadStream,
  toGuest: (bytes: Uint8Array) => void,
  onQuit: () => void,
  onSwitch?: () => void,
  escapes = stdin.isTTY === true,
  onSnapshot?: () => void,
): TerminalInput {
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  let afterCtrlA = false;
  const onData = (chunk: Buffer) => {
    const out: number[] = [];
    for (const byte of chunk) {
      if (afterCtrlA) {
        afterCtrlA = false;
        if (byte === 0x78 /* x */) {
          onQuit();
          return;
        }
        if (byte === 0x63 /* c */ && onSwitch) {
          // Bytes before the escape go to the console they were typed for.
          if (out.length > 0) toGuest(Uint8Array.from(out.splice(0)));
          onSwitch();
          continue;
        }
        if (byte === 0x73 /* s */ && onSnapshot) {
          if (out.length > 0) toGuest(Uint8Array.from(out.splice(0)));
          onSnapshot();
          continue;
        }
        if (byte === CTRL_A) out.push(CTRL_A);
        continue;
      }
      if (byte === CTRL_A && escapes) afterCtrlA = true;
      else out.push(byte);
    }
    if (out.length > 0) toGuest(Uint8Array.from(out));
  };
  stdin.on("data", onData);
  stdin.resume();
  return {
    close() {
      stdin.off("data", onData);
      if (raw) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
