/**
 * A VM's interactive console through the SDK (GET /vms/{id}/console with Upgrade: websocket): the
 * last 64 KiB first, then output as it comes; input goes to the guest (the first connection to send
 * holds the input until it closes). `expect` waits for a pattern in the output, as a script driving a
 * shell does.
 */
import { WebSocket } from "ws";
import { VireoApiError } from "./transport.js";

export class ConsoleSession {
  private text = "";
  /** Where the next expect() starts looking: each match is consumed once. */
  private from = 0;
  private readonly waiters = new Set<() => void>();
  private closedWith: string | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      this.text += data.toString("latin1");
      for (const w of [...this.waiters]) w();
    });
    ws.on("close", (code, reason) => {
      this.closedWith = `the console closed (${code}${reason.length > 0 ? ` ${reason}` : ""})`;
      for (const w of [...this.waiters]) w();
    });
  }

  static open(url: string, headers: Record<string, string>): Promise<ConsoleSession> {
    const ws = new WebSocket(url, { headers });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new ConsoleSession(ws)));
      ws.once("unexpected-response", (_req, res) => {
        reject(new VireoApiError(res.statusCode ?? 0, "http", `the console answered ${res.statusCode}`));
      });
      ws.once("error", reject);
    });
  }

  /** Everything received so far (latin1: one character per byte). */
  get output(): string {
    return this.text;
  }

  /** Sends input to the guest, as typed. */
  send(input: string | Uint8Array): void {
    this.ws.send(typeof input === "string" ? Buffer.from(input, "utf8") : input);
  }

  /**
   * The output from after the last match to the end of the next match of `pattern`; rejects when the
   * console closes first or `timeoutMs` passes, with what came meanwhile.
   */
  expect(pattern: RegExp | string, timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const rest = this.text.slice(this.from);
        const at =
          typeof pattern === "string"
            ? { index: rest.indexOf(pattern), length: pattern.length }
            : (() => {
                const m = new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(rest);
                return m === null ? { index: -1, length: 0 } : { index: m.index, length: m[0].length };
              })();
        if (at.index >= 0) {
          finish();
          this.from += at.index + at.length;
          resolve(rest.slice(0, at.index + at.length));
        } else if (this.closedWith !== null) {
          finish();
          reject(new Error(`${this.closedWith} before ${String(pattern)}; it printed: ${rest.slice(-500)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        const rest = this.text.slice(this.from);
        reject(
          new Error(
            `no ${String(pattern)} on the console within ${timeoutMs} ms; it printed: ${rest.slice(-500)}`,
          ),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve());
      this.ws.close(1000);
    });
  }
}
