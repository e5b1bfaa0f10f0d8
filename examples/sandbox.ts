/**
 * A sandbox from a warm pool, through the SDK only: acquire a booted VM, copy a script into it, run it
 * through the guest agent, print its output and exit code, copy the file it wrote back out, release
 * the VM (it is deleted, never reused).
 *
 *   node dist/examples/sandbox.js POOL      (VIREO_SOCKET: the daemon's socket, if not the default)
 *
 * The pool's guest is the default Debian image, whose qemu-guest-agent answers on vsock.
 */
import { Vireo } from "vireo";

const [pool = "sandbox"] = process.argv.slice(2);
const socket = process.env.VIREO_SOCKET;
const vireo = new Vireo(socket === undefined ? {} : { socket });

const job = `uname -m
echo "hi from $(hostname)"
echo "result: $((6 * 7))" > /tmp/result.txt
`;

const vm = await vireo.acquire(pool, { timeoutMs: 300_000 });
try {
  await vireo.putFile(vm.name, "/tmp/job.sh", new TextEncoder().encode(job));
  const run = await vireo.vmExec(vm.name, { argv: ["/bin/sh", "/tmp/job.sh"], timeoutMs: 60_000 });
  // Output that is not UTF-8 comes base64-encoded.
  const stdout = Buffer.from(run.stdout, run.stdoutEncoding === "base64" ? "base64" : "utf8");
  const result = await vireo.getFile(vm.name, "/tmp/result.txt");
  process.stdout.write(`${vm.name}: exit code ${run.exitCode}\n${stdout}`);
  process.stdout.write(Buffer.from(result));
} finally {
  await vireo.release(pool, vm.name);
}
