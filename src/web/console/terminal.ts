/**
 * A VM's console in xterm.js over the daemon's console WebSocket: what the guest wrote so far
 * arrives first (the ring's replay), then its output as it comes; keystrokes go back as binary
 * frames. The first client to type holds the console's input; a close that is not ours is shown.
 */
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { vmPath } from "./api.js";
import { showError } from "./errors.js";

export interface ConsoleView {
  dispose(): void;
}

export function attachConsole(el: HTMLElement, vm: string, onState: (text: string) => void): ConsoleView {
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${vmPath(vm)}/console`);
  socket.binaryType = "arraybuffer";
  let disposed = false;
  const encoder = new TextEncoder();
  socket.onopen = () => onState("console connected");
  socket.onmessage = (e) => term.write(new Uint8Array(e.data as ArrayBuffer));
  socket.onclose = (e) => {
    onState(`console closed (${e.code}${e.reason ? `: ${e.reason}` : ""})`);
    // 1000/1001: the daemon is stopping or we left; anything else is a failure someone should see.
    if (!disposed && e.code !== 1000 && e.code !== 1001) {
      showError("console", `closed with code ${e.code}${e.reason ? `: ${e.reason}` : ""}`);
    }
  };
  const input = term.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  const resize = () => fit.fit();
  window.addEventListener("resize", resize);
  term.focus();
  return {
    dispose() {
      disposed = true;
      window.removeEventListener("resize", resize);
      input.dispose();
      socket.close(1000);
      term.dispose();
    },
  };
}
