/**
 * `vireo vm console NAME`: the terminal attached to a daemon VM's console over the WebSocket at
 * /vms/NAME/console: the last 64 KiB first, then output as it comes, and keystrokes to the guest
 * (raw mode on a TTY). Ctrl-A x detaches and leaves the VM running; so does the end of a piped stdin.
 */
import { WebSocket } from "ws";
import { UserError } from "../util/errors.js";
import { attachTerminal } from "./terminal-input.js";

/** Attaches to the console of the VM `name` of the daemon on `socket`; resolves with the exit status. */
export async function vmConsole(name: string, socket: string): Promise<number> {
  const ws = new WebSocket(`ws+unix://${socket}:/vms/${encodeURIComponent(name)}/console`);

  return new Promise<number>((done, fail) => {
    let detached = false;
    let input: ReturnType<typeof attachTerminal> | null = null;
    const detach = () => {
      detached = true;
      input?.close();
      input = null;
      ws.close(1000, "detached");
    };
    let refused = false;
    ws.on("unexpected-response", (_req, res) => {
      refused = true;
      fail(new UserError(`the daemon refused the console of '${name}' (HTTP ${res.statusCode})`));
      ws.terminate();
    });
    // ws always follows an error with close; the close decides, knowing what went wrong.
    let failure: NodeJS.ErrnoException | null = null;
    ws.on("error", (e: NodeJS.ErrnoException) => {
      failure = e;
    });
    let attached = false;
    ws.on("message", (data: Buffer) => {
      // The replay is always the first frame; an unknown VM gets a close instead, and no "attached".
      if (!attached) {
        attached = true;
        process.stderr.write(`vireo: attached to ${name} (Ctrl-A x detaches)\r\n`);
        input = attachTerminal(process.stdin, (bytes) => ws.send(bytes), detach, undefined, true);
        process.stdin.once("end", detach);
      }
      process.stdout.write(data);
    });
    ws.on("close", (code, reason) => {
      input?.close();
      process.stdin.off("end", detach);
      // A paused stdin that is a socket (a parent's pipe) still holds the event loop open.
      process.stdin.destroy();
      if (refused) return;
      if (detached || code === 1000) {
        if (detached) process.stderr.write(`\r\nvireo: detached from ${name}\n`);
        done(0);
        return;
      }
      const lost = failure as NodeJS.ErrnoException | null;
      if (!attached && lost !== null) {
        if (lost.code === "ENOENT" || lost.code === "ECONNREFUSED") {
          fail(new UserError(`no daemon listens on ${socket} (start one with 'vireo daemon')`));
        } else fail(new UserError(`console of '${name}': ${lost.message}`));
        return;
      }
      const why =
        reason.toString() ||
        (lost === null ? `the daemon closed the console (code ${code})` : `connection lost: ${lost.message}`);
      if (code === 4404) fail(new UserError(why));
      else {
        process.stderr.write(`\r\nvireo: ${why}\n`);
        done(1);
      }
    });
  });
}
