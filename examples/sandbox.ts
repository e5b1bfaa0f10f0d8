/**
 * A sandbox from a warm pool: acquire a booted VM, run a command in it, read its output and exit
 * status, release the VM (it is deleted, never reused).
 *
 *   node dist/examples/sandbox.js POOL [COMMAND]      (VIREO_SOCKET: the daemon's socket, if not the default)
 *
 * The pool's guest is the default Debian image, whose /init leaves a shell on the console; the command
 * goes through that shell (the guest agent's exec and file copy are not in the SDK yet).
 */
import { Vireo } from "vireo";

const [pool = "sandbox", command = "uname -m"] = process.argv.slice(2);
const socket = process.env.VIREO_SOCKET;
const vireo = new Vireo(socket === undefined ? {} : { socket });

const vm = await vireo.acquire(pool, { timeoutMs: 300_000 });
try {
  const shell = await vireo.openConsole(vm.name);
  // Spelled so that the shell's echo of the line itself does not match: only the output does.
  shell.send(`echo BEGIN-$((6*7)); ${command}; echo END-$((6*7)) $?\n`);
  await shell.expect("BEGIN-42", 60_000);
  const printed = await shell.expect(/END-42 (\d+)/, 60_000);
  const [, status] = /END-42 (\d+)$/.exec(printed) ?? [];
  const output = printed
    .replace(/END-42 \d+$/, "")
    .replace(/\r/g, "")
    .trim();
  await shell.close();
  process.stdout.write(`${vm.name}: exit status ${status}\n${output}\n`);
} finally {
  await vireo.release(pool, vm.name);
}
