/**
 * A vCPU thread: a blocking KVM_RUN loop (worker_threads entry point, run from the compiled .js file).
 *
 * Cheap exits are handled here: port I/O to ports no device claims (reads give all-ones, writes are
 * dropped, e.g. Linux's port-0x80 delays) and kicks. Device I/O is forwarded to the main thread (see
 * protocol.ts). Exits that end the guest (triple fault, entry failure, internal error, a system event)
 * are reported with a register dump, and the loop ends. While the VM is paused the thread parks at the top
 * of its loop, outside KVM_RUN (see engine.ts).
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { EXIT, EXIT_NAMES, IOCTL, RUN, SYSTEM_EVENT } from "../../hypervisor/kvm/abi.js";
import { getRegs, getSregs } from "../../hypervisor/kvm/kvm.js";
import { formatRegisterDump } from "../../hypervisor/kvm/registers.js";
import { readVcpuState, writeVcpuState } from "../../hypervisor/kvm/vcpu-state.js";
import * as libc from "../../hypervisor/libc.js";
import {
  COUNTER,
  CTL,
  CTL_COUNTERS_OFFSET,
  CTL_THREAD_OFFSET,
  LOOP,
  SHARED,
  SHARED_PORT_BITMAP_OFFSET,
  STATE,
  type VcpuReply,
  type VcpuRequest,
  type WorkerConfig,
  type WorkerReport,
} from "./protocol.js";

const config = workerData as WorkerConfig;
const ctl = new Int32Array(config.control, 0, 8);
const counters = new Float64Array(config.control, CTL_COUNTERS_OFFSET, 8);
const flags = new Int32Array(config.shared, 0, 2);
const ports = new Uint8Array(config.shared, SHARED_PORT_BITMAP_OFFSET);
const runBytes = new Uint8Array(libc.view(config.runAddress, config.runSize));
const run = new DataView(runBytes.buffer);

new BigInt64Array(config.control, CTL_THREAD_OFFSET, 1)[0] = libc.threadSelf();
counters[COUNTER.tid] = libc.threadId();

function report(message: WorkerReport): void {
  parentPort?.postMessage(message);
}

function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** What a fatal exit looks like, from the exit fields of kvm_run. */
function describeExit(reason: number): string {
  const name = EXIT_NAMES[reason] ?? `exit reason ${reason}`;
  switch (reason) {
    case EXIT.SHUTDOWN:
      return `${name} (triple fault)`;
    case EXIT.FAIL_ENTRY:
      return `${name}: hardware_entry_failure_reason ${hex(run.getBigUint64(RUN.failReason, true))} on host cpu ${run.getUint32(RUN.failCpu, true)}`;
    case EXIT.INTERNAL_ERROR: {
      const suberror = run.getUint32(RUN.internalSuberror, true);
      const kinds: Record<number, string> = {
        1: "emulation failure",
        2: "simultaneous exceptions",
        3: "event delivery",
        4: "unexpected exit",
      };
      const n = Math.min(run.getUint32(RUN.internalNdata, true), 16);
      const text = `${name}: suberror ${suberror} (${kinds[suberror] ?? "?"})`;
      // An emulation failure may carry the instruction bytes: flags (bit 0), then insn_size and 15 bytes.
      const flags = n > 0 ? run.getBigUint64(RUN.internalData, true) : 0n;
      if (suberror === 1 && (flags & 1n) !== 0n && n >= 3) {
        const size = Math.min(run.getUint8(RUN.internalData + 8), 15);
        const bytes = Array.from(runBytes.subarray(RUN.internalData + 9, RUN.internalData + 9 + size), (b) =>
          b.toString(16).padStart(2, "0"),
        );
        return `${text}, instruction bytes ${bytes.join(" ")}`;
      }
      const data = Array.from({ length: n }, (_, i) => hex(run.getBigUint64(RUN.internalData + 8 * i, true)));
      return `${text}${n ? ` data ${data.join(" ")}` : ""}`;
    }
    case EXIT.EXCEPTION:
      return `${name}: vector ${run.getUint32(RUN.exception, true)} error code ${hex(run.getUint32(RUN.exceptionError, true))}`;
    case EXIT.UNKNOWN:
      return `${name}: hardware exit reason ${hex(run.getBigUint64(32, true))}`;
    case EXIT.SYSTEM_EVENT:
      return `${name}: type ${run.getUint32(RUN.eventType, true)}`;
    default:
      return name;
  }
}

function fatal(exit: string): void {
  let dump: string;
  try {
    dump = formatRegisterDump(getRegs(config.fd), getSregs(config.fd));
  } catch (e) {
    dump = `(registers unavailable: ${(e as Error).message})`;
  }
  report({ type: "fatal", vcpu: config.vcpu, exit, message: dump });
}

function forward(): void {
  counters[COUNTER.forwarded]++;
  Atomics.store(ctl, CTL.state, STATE.PENDING);
  Atomics.notify(ctl, CTL.state);
  while (Atomics.load(ctl, CTL.state) === STATE.PENDING) Atomics.wait(ctl, CTL.state, STATE.PENDING);
}

function portIo(): void {
  const port = run.getUint16(RUN.ioPort, true);
  if (((ports[port >> 3] as number) >> (port & 7)) & 1) {
    forward();
    return;
  }
  counters[COUNTER.localPio]++;
  if (run.getUint8(RUN.ioDirection) === 0) {
    const offset = Number(run.getBigUint64(RUN.ioDataOffset, true));
    const length = run.getUint8(RUN.ioSize) * run.getUint32(RUN.ioCount, true);
    runBytes.fill(0xff, offset, offset + length);
  }
}

const stopping = () => Atomics.load(flags, SHARED.stop) !== 0;

/**
 * Waits outside KVM_RUN while the VM is paused. `parked` is set before the flag is looked at again, so
 * the main thread either sees this thread parked or this thread sees the pause (both are seq-cst).
 */
function park(): void {
  Atomics.store(ctl, CTL.parked, 1);
  Atomics.notify(ctl, CTL.parked);
  while (Atomics.load(flags, SHARED.pause) !== 0 && !stopping()) {
    // The main thread raises `request` and then wakes the pause word until the request is answered.
    if (Atomics.load(ctl, CTL.request) === 1) answer();
    else Atomics.wait(flags, SHARED.pause, 1);
  }
  Atomics.store(ctl, CTL.parked, 0);
}

/** Answers the request waiting on the port; the answer is posted before `request` drops to 0. */
function answer(): void {
  const request = receiveMessageOnPort(config.requests)?.message as VcpuRequest | undefined;
  let reply: VcpuReply;
  try {
    if (request === undefined) throw new Error("no request on the port");
    reply = { type: "state", state: readVcpuState(config.fd, request.caps) };
  } catch (e) {
    reply = { type: "error", message: (e as Error).message };
  }
  config.requests.postMessage(reply);
  Atomics.store(ctl, CTL.request, 0);
  Atomics.notify(ctl, CTL.request);
}

/** The run loop; returns when the main thread asks to stop or the guest ends. */
function loop(): void {
  const fd = config.fd;
  const RUN_IOCTL = IOCTL.RUN;
  for (;;) {
    if (stopping()) return;
    if (Atomics.load(flags, SHARED.pause) !== 0) {
      park();
      continue;
    }
    const r = libc.ioctlRaw(fd, RUN_IOCTL, 0);
    const exits = ++counters[COUNTER.exits];
    if (exits === 1) counters[COUNTER.firstExitTime] = performance.timeOrigin + performance.now();
    if (r < 0) {
      if (r === -libc.EINTR || r === -libc.EAGAIN) {
        // A kick (immediate_exit + SIGUSR2), for a stop or a pause: clear the flag unless stopping.
        if (stopping()) return;
        runBytes[RUN.immediateExit] = 0;
        continue;
      }
      fatal(`KVM_RUN failed: ${libc.errnoName(-r)}`);
      return;
    }
    const reason = run.getUint32(RUN.exitReason, true);
    switch (reason) {
      case EXIT.IO:
        portIo();
        break;
      case EXIT.MMIO:
        counters[COUNTER.mmio]++;
        forward();
        break;
      case EXIT.INTR:
        if (stopping()) return;
        runBytes[RUN.immediateExit] = 0;
        break;
      case EXIT.HLT:
      case EXIT.IRQ_WINDOW_OPEN:
        break;
      case EXIT.SYSTEM_EVENT: {
        const type = run.getUint32(RUN.eventType, true);
        if (type === SYSTEM_EVENT.SHUTDOWN || type === SYSTEM_EVENT.RESET) {
          report({
            type: "event",
            vcpu: config.vcpu,
            event: type === SYSTEM_EVENT.RESET ? "reboot" : "poweroff",
          });
        } else {
          fatal(describeExit(reason));
        }
        return;
      }
      default:
        fatal(describeExit(reason));
        return;
    }
  }
}

Atomics.store(ctl, CTL.loop, LOOP.RUNNING);
Atomics.notify(ctl, CTL.loop);
while (Atomics.load(ctl, CTL.go) === 0) Atomics.wait(ctl, CTL.go, 0);
counters[COUNTER.firstRunTime] = performance.timeOrigin + performance.now();
try {
  if (config.restore !== undefined) {
    try {
      writeVcpuState(config.fd, config.restore);
    } catch (e) {
      throw new Error(`restoring vCPU ${config.vcpu}: ${(e as Error).message}`);
    }
  }
  loop();
} catch (e) {
  report({
    type: "fatal",
    vcpu: config.vcpu,
    exit: "vCPU thread error",
    message: String((e as Error).stack ?? e),
  });
}
// No KVM_RUN from here on. Stay alive (so the main thread never signals a thread that is gone) until the
// main thread says it will not signal again.
Atomics.store(ctl, CTL.loop, LOOP.EXITED);
Atomics.notify(ctl, CTL.loop);
while (Atomics.load(ctl, CTL.release) === 0) Atomics.wait(ctl, CTL.release, 0);
