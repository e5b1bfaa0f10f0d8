/**
 * `vireo run` flags → a VmSpec. Only the flags' own syntax is checked here (and which flags an arch
 * takes); every range and cross-field rule is validateVmSpec's, whose problems are reported under the
 * flag that set the field.
 */
import { parseCpuFeatures } from "../hypervisor/kvm/cpuid.js";
import { formatMac } from "../net/mac.js";
import { UserError } from "../util/errors.js";
import { parseSize } from "../util/size.js";
import { DEFAULT_CMDLINE_RISCV } from "../vm/riscv.js";
import { type DriveSpec, type VmSpec, VmSpecError, validateVmSpec } from "../vm/spec.js";
import { type ParsedArgs, parseCount } from "./flags.js";
import { parseNet } from "./net.js";
import { absoluteSpecPaths } from "./spec-paths.js";
import { parseDrive, parseVirtioRing } from "./virtio.js";
import { parseVsock } from "./vsock.js";
import { defaultX86Guest } from "./x86-default.js";

export { DEVICE_FLAGS } from "./device-flags.js";

/** The flags an x86_64 run understands (the others are riscv64-only, or not wired to x86 yet). */
const X86_FLAGS = new Set([
  "arch",
  "engine",
  "kernel",
  "initrd",
  "append",
  "memory",
  "cpus",
  "cpu-features",
  "stats",
  "drive",
  "rng",
  "virtio-console",
  "balloon",
  "balloon-target",
  "net",
  "virtio-ring",
  "vsock",
  "snapshot-dir",
  "snapshot-zlib",
  "snapshot-and-stop",
]);

/** Spec fields → the flag that sets them, longest first, for messages. */
const FLAG_OF: [string, string][] = [
  ["/boot/firmware", "--bios"],
  ["/boot/kernel", "--kernel"],
  ["/boot/initrd", "--initrd"],
  ["/boot/cmdline", "--append"],
  ["/balloon", "--balloon-target"],
  ["/maxInstructions", "--max-insns"],
  ["/removeCpuFeatures", "--cpu-features"],
  ["/virtioRing", "--virtio-ring"],
  ["/keyboard", "--no-keyboard"],
  ["/memory", "--memory"],
  ["/engine", "--engine"],
  ["/drives", "--drive"],
  ["/vsock", "--vsock"],
  ["/cpus", "--cpus"],
  ["/nics", "--net"],
  ["/arch", "--arch"],
  ["/name", "--name"],
];

function flagOf(path: string): string | null {
  return FLAG_OF.find(([prefix]) => path.startsWith(prefix))?.[1] ?? null;
}

/** validateVmSpec, with each problem named by its flag: "--cpus: ...; --net: ...". */
function validateRunSpec(spec: VmSpec, args: ParsedArgs): VmSpec {
  try {
    return validateVmSpec(spec);
  } catch (e) {
    throw asFlagError(e, args);
  }
}

/**
 * A VmSpecError reworded with flag names (other errors pass through): the field a problem is about,
 * and fields its message refers to ("smaller than /memory"), become the flags that set them.
 */
export function asFlagError(e: unknown, args: ParsedArgs): unknown {
  if (!(e instanceof VmSpecError)) return e;
  const parts = e.problems.map((p) => {
    const message = p.message.replace(/(?<=^|\s)\/[A-Za-z/0-9]+/g, (path) => flagOf(path) ?? path);
    const flag = flagOf(p.path);
    if (flag === null) return message;
    const label = flag === "--memory" ? `${flag} ${args.values.get("memory") ?? "512M"}` : flag;
    // "--initrd needs a Linux boot" reads as a sentence; other messages follow the flag after a colon.
    return /^(needs|must|is) /.test(message) ? `${label} ${message}` : `${label}: ${message}`;
  });
  return new UserError(parts.join("; "));
}

export interface RunSpec {
  spec: VmSpec;
  /** How each drive is named in messages ("--drive", "--root-disk"). */
  driveFlags: string[];
}

/**
 * The spec of `vireo run`'s flags: checked first with a placeholder kernel, so a bad flag is reported
 * before a default image is fetched or a root disk prepared; then the guest files are resolved.
 */
export async function runSpecFromFlags(args: ParsedArgs): Promise<RunSpec> {
  const arch = args.values.get("arch") ?? "riscv64";
  if (arch !== "riscv64" && arch !== "x86_64") {
    throw new UserError(`--arch ${arch}: supported are riscv64 and x86_64`);
  }
  const riscv = arch === "riscv64";
  if (!riscv) {
    const given = [...args.values.keys(), ...args.switches, ...args.repeated.keys()];
    const unsupported = given.find((flag) => !X86_FLAGS.has(flag));
    if (unsupported !== undefined)
      throw new UserError(`--${unsupported} is not supported with --arch x86_64 yet`);
  }
  const engine = args.values.get("engine") ?? "auto";
  if (riscv && engine !== "auto" && engine !== "interpreter" && engine !== "translate") {
    throw new UserError(
      `--engine ${engine}: riscv64 guests run on the translator or the interpreter (--engine translate, interpreter or auto)`,
    );
  }
  if (!riscv && engine !== "auto" && engine !== "kvm") {
    throw new UserError(`--engine ${engine}: x86_64 guests run on KVM (--engine kvm or auto)`);
  }
  if (riscv && args.values.has("cpu-features"))
    throw new UserError("--cpu-features is for x86_64 guests on KVM");
  const bios = args.values.get("bios") ?? "builtin";
  const memory = parseSize(args.values.get("memory") ?? "512M", "--memory");
  const drives: DriveSpec[] = (args.repeated.get("drive") ?? []).map((text, i) => {
    const d = parseDrive(text, i);
    return { path: d.file, readOnly: d.readOnly, id: d.id };
  });
  const driveFlags = drives.map(() => "--drive");
  const balloonTarget = args.values.get("balloon-target");
  const vsock = args.values.get("vsock");
  const featuresText = args.values.get("cpu-features");
  const kernel = args.values.get("kernel");
  const initrd = args.values.get("initrd");
  const append = args.values.get("append");
  const maxText = args.values.get("max-insns");
  const spec: VmSpec = {
    name: "run",
    arch,
    engine: engine as VmSpec["engine"],
    cpus: parseCount(args.values.get("cpus") ?? "1", "cpus", 0, Number.MAX_SAFE_INTEGER),
    memory,
    boot: {
      kernel: kernel ?? "(default guest)",
      ...(initrd === undefined ? {} : { initrd }),
      ...(append === undefined ? {} : { cmdline: append }),
      ...(riscv ? { firmware: bios } : {}),
    },
    drives,
    nics: (args.repeated.get("net") ?? []).map((text) => {
      const n = parseNet(text);
      return { backend: `${n.kind}:${n.name}`, ...(n.mac === null ? {} : { mac: formatMac(n.mac) }) };
    }),
    rng: args.switches.has("rng"),
    console: args.switches.has("virtio-console"),
    virtioRing: parseVirtioRing(args),
  };
  if (args.switches.has("no-keyboard")) spec.keyboard = false;
  if (balloonTarget !== undefined) {
    spec.balloon = { targetBytes: parseSize(balloonTarget, "--balloon-target") };
  } else if (args.switches.has("balloon")) spec.balloon = {};
  if (vsock !== undefined) {
    const v = parseVsock(vsock);
    spec.vsock = v.uds === null ? { cid: v.cid } : { cid: v.cid, uds: v.uds };
  }
  if (maxText !== undefined)
    spec.maxInstructions = parseCount(maxText, "max-insns", 1, Number.MAX_SAFE_INTEGER);
  if (featuresText !== undefined) spec.removeCpuFeatures = parseCpuFeatures(featuresText);
  if (args.switches.has("root-disk")) {
    if (bios === "none") throw new UserError("--root-disk needs a Linux boot (--bios builtin or a firmware)");
    // The default image's ext4 disk, as /dev/vda: it must be the first drive the guest probes.
    drives.unshift({ path: "(root disk)", readOnly: false, id: "root" });
    driveFlags.unshift("--root-disk");
  }
  if (riscv && bios === "none") {
    if (kernel === undefined) throw new UserError("--bios none needs --kernel FILE (a bare-metal program)");
    if (args.values.has("dump-dtb"))
      throw new UserError("--dump-dtb needs a Linux boot (--bios builtin or a firmware)");
  }
  if (kernel === undefined && initrd !== undefined) throw new UserError("--initrd needs --kernel");
  validateRunSpec(spec, args);
  await resolveGuestFiles(spec, args);
  return { spec, driveFlags };
}

/**
 * `vireo vm create`'s spec from the device flags: the spec `vireo run` would boot, named, with its
 * paths made absolute for the daemon.
 */
export async function vmSpecFromFlags(args: ParsedArgs, name: string): Promise<VmSpec> {
  const { spec } = await runSpecFromFlags(args);
  spec.name = name;
  absoluteSpecPaths(spec as unknown as Record<string, unknown>, process.cwd());
  return validateRunSpec(spec, args);
}

/** Fills in the root disk and, without --kernel, the default guest (fetching its image if needed). */
async function resolveGuestFiles(spec: VmSpec, args: ParsedArgs): Promise<void> {
  const kernelGiven = args.values.has("kernel");
  if (args.switches.has("root-disk")) {
    const { prepareWritableRootDisk, withRootDisk } = await import("../images/riscv64.js");
    const root = await prepareWritableRootDisk({ quiet: false });
    (spec.drives[0] as DriveSpec).path = root.disk;
    spec.boot.cmdline = withRootDisk(spec.boot.cmdline ?? DEFAULT_CMDLINE_RISCV);
    if (!kernelGiven) {
      spec.boot.kernel = root.kernel;
      spec.boot.initrd ??= root.initrd;
    }
    return;
  }
  if (kernelGiven) return;
  if (spec.arch === "riscv64") {
    const { ensureRiscv64Image } = await import("../images/riscv64.js");
    const image = await ensureRiscv64Image({});
    spec.boot.kernel = image.kernel;
    spec.boot.initrd = image.initrd;
  } else {
    const { kernelPath, initrdPath } = await defaultX86Guest();
    spec.boot.kernel = kernelPath;
    spec.boot.initrd = initrdPath;
  }
}
