// A hostile probe of the `vireo` CLI: runs it with bad values for every subcommand and flag, one at a
// time, and counts stack traces and hangs. A hang is a run killed after 20 s, or one whose memory grows
// past 1 GiB (reading /dev/zero whole, say), killed at once rather than left to eat the host.
//
//   npm run -s build && node scripts/probe-cli.js [--verbose]
//
// Runs sequentially: each child is one `node` process, and the machine may be shared. Guests never boot:
// riscv64 runs end at --dump-dtb or --max-insns, x86_64 runs at a KVM device that does not exist.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "dist/src/cli/main.js");
const verbose = process.argv.includes("--verbose");
const TIMEOUT_MS = 20_000;
const RSS_LIMIT_KB = 1024 * 1024;

const scratch = mkdtempSync(join(tmpdir(), "vireo-probe-"));
const demo = join(root, "demo/hello.elf");
const dir = join(scratch, "a-directory");
mkdirSync(dir);
const fifo = join(scratch, "fifo");
spawnSync("mkfifo", [fifo]);
const empty = join(scratch, "empty");
writeFileSync(empty, "");
const junk = join(scratch, "junk");
writeFileSync(junk, "not a guest image of any kind\n");
const image = join(scratch, "Image");
{
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 0x20_0000, true);
  view.setUint32(16, 1 << 20, true);
  bytes.set([0x52, 0x53, 0x43, 0x05], 56);
  writeFileSync(image, bytes);
}
const x86Elf = join(scratch, "x86.elf");
{
  const elf = new Uint8Array(readFileSync(demo));
  new DataView(elf.buffer).setUint16(18, 62, true);
  writeFileSync(x86Elf, elf);
}
const bzImage = join(homedir(), ".cache/vireo/images/x86_64/bzImage");
const dtbOut = join(scratch, "out.dtb");
const missing = join(scratch, "no/such/dir/file");
const longPath = join(scratch, "s".repeat(120));

const FILES = ["/dev/zero", fifo, dir, missing, empty, junk, x86Elf, "/dev/null", "/dev/full"];
const NUMBERS = ["-1", "0", "1", "1.5", "0x10", "1e30", "NaN", "Infinity", "99999999999999999999999"];
const SIZES = ["12Q", "2G", "3G", "4G", "2047M", "2049M", "4095M", "1P", "9007199254740992", "-5M", "1.1K"];
const GARBAGE = ["=", ",", "a,b", "cid=", "x=1,x=2", " ", "\u00e9", "-", "--"];
const VALUES = [...FILES, ...NUMBERS, ...SIZES, ...GARBAGE];

const RUN_VALUE_FLAGS = [
  "arch",
  "bios",
  "kernel",
  "initrd",
  "append",
  "memory",
  "cpus",
  "max-insns",
  "dump-dtb",
  "engine",
  "cpu-features",
  "drive",
  "balloon-target",
  "net",
  "vsock",
  "virtio-ring",
];
const RUN_SWITCHES = ["stats", "rng", "virtio-console", "balloon"];

/** [label, argv, env] */
const inputs = [];
const add = (argv, env = {}) => inputs.push([argv, env]);

const riscvLinux = ["run", "--kernel", image, "--dump-dtb", dtbOut];
const riscvBare = ["run", "--bios", "none", "--kernel", demo, "--max-insns", "100000"];
const x86 = ["run", "--arch", "x86_64", "--kernel", existsSync(bzImage) ? bzImage : image];
const noKvm = { VIREO_KVM_DEVICE: join(scratch, "no-kvm") };

/** The base's own value for a flag is replaced, so each probe changes exactly one thing. */
function withFlag(base, flag, value) {
  const argv = [...base];
  const at = argv.indexOf(`--${flag}`);
  if (at >= 0) argv.splice(at, 2);
  return [...argv, `--${flag}`, value];
}

for (const flag of RUN_VALUE_FLAGS) {
  for (const value of VALUES) {
    add(withFlag(riscvLinux, flag, value));
    add(withFlag(x86, flag, value), noKvm);
  }
  add([...riscvLinux, `--${flag}`]);
  add([...riscvLinux, `--${flag}=`]);
}
for (const flag of ["kernel", "memory", "cpus", "max-insns"]) {
  for (const value of [...FILES, ...NUMBERS, ...SIZES]) add(withFlag(riscvBare, flag, value));
}
for (const flag of RUN_SWITCHES) {
  add([...riscvLinux, `--${flag}=1`]);
  add([...riscvLinux, `--${flag}`, `--${flag}`]);
  add([...x86, `--${flag}`], noKvm);
}
for (const flag of ["memory", "cpus", "kernel", "append"]) {
  add([...riscvLinux, `--${flag}`, "1", `--${flag}`, "1"]);
}
for (const [flag, value] of [
  ["vsock", `uds=${longPath}`],
  ["vsock", `uds=${missing}`],
  ["vsock", `uds=${dir}`],
  ["vsock", "cid=99999999999999"],
  ["net", "tap:"],
  ["net", `tap:${"x".repeat(40)}`],
  ["net", "switch:"],
  ["net", "switch,mac=zz"],
  ["net", "switch,mac=01:00:00:00:00:01"],
  ["drive", `file=${dir}`],
  ["drive", `file=${fifo}`],
  ["drive", `file=${missing}`],
  ["dump-dtb", "/dev/full"],
  ["dump-dtb", dir],
  ["dump-dtb", missing],
  ["bios", bzImage],
  ["bios", x86Elf],
  ["bios", "none"],
  ["kernel", bzImage],
  ["initrd", dir],
  ["cpu-features", "-x2apic,-nosuch"],
  ["cpu-features", ","],
]) {
  add(withFlag(riscvLinux, flag, value));
  add(withFlag(x86, flag, value), noKvm);
}
add(["run", "--bios", "none", "--kernel", demo, "--memory", "3G", "--max-insns", "100000"]);
add(["run", "--bios", "none", "--kernel", demo, "--initrd", demo]);
add(["run", "--bios", "none", "--kernel", demo, "positional"]);
add(["run", "--arch", "x86_64", "--kernel", missing], noKvm);
add(["run", "--arch", "x86_64", "--kernel", image], noKvm);
add(["run", "--arch", "x86_64", "--kernel", x86Elf], noKvm);
add(["run", "--arch", "x86_64", "--kernel", demo], noKvm);
for (const top of [[], ["--help"], ["help"], ["--version"], ["nope"], [""], ["--"], ["run", "--help"]])
  add(top);
for (const sub of [
  [],
  ["--help"],
  ["nope"],
  ["list", "x"],
  ["list", "--arch", "x"],
  ["path", "--arch", ""],
]) {
  add(["images", ...sub]);
}
for (const value of ["", "bogus", "x86", "riscv32", "--force", ...NUMBERS]) {
  add(["images", "path", "--arch", value]);
  add(["images", "fetch", "--arch", value]);
}
add(["images", "fetch", "--force=1", "--arch", "bogus"]);
add(["images", "path", "--arch", "riscv64", "--arch", "x86_64"]);

/** Runs one input; the verdict is "ok", "trace", "hang" or "untidy" (status 2 but not one `vireo:` line). */
function probe(argv, env) {
  return new Promise((resolveVerdict) => {
    // In the scratch directory: a value taken as a relative path (--dump-dtb 1) writes there.
    const child = spawn(process.execPath, [main, ...argv], {
      cwd: scratch,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    let killed = null;
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const kill = (why) => {
      killed ??= why;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill("timeout"), TIMEOUT_MS);
    const watch = setInterval(() => {
      try {
        const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        if (rss && Number(rss[1]) > RSS_LIMIT_KB) kill("memory");
      } catch {
        // exited
      }
    }, 100);
    child.on("close", (status) => {
      clearTimeout(timer);
      clearInterval(watch);
      let verdict = "ok";
      if (killed !== null) verdict = "hang";
      else if (/internal error|\n\s+at /.test(stderr)) verdict = "trace";
      // A missing command prints the usage (on stdout) and exits 2: that is meant.
      else if (status === 2 && stderr === "" && /^usage:/i.test(stdout)) verdict = "ok";
      else if (status === 2 && !/^vireo: [^\n]*\n$/.test(stderr)) verdict = "untidy";
      resolveVerdict({ verdict, status, killed, stderr });
    });
  });
}

const counts = { ok: 0, trace: 0, hang: 0, untidy: 0 };
for (const [argv, env] of inputs) {
  const r = await probe(argv, env);
  counts[r.verdict]++;
  const shown = argv.map((a) => (a.startsWith(scratch) ? `$T${a.slice(scratch.length)}` : a)).join(" ");
  if (r.verdict !== "ok" || verbose) {
    const first = r.stderr.split("\n").slice(0, 2).join(" | ").slice(0, 200);
    const how = r.killed === null ? `status ${r.status}` : `killed (${r.killed})`;
    process.stdout.write(`${r.verdict.toUpperCase()} vireo ${shown}: ${how}: ${first}\n`);
  }
}
rmSync(scratch, { recursive: true, force: true });
process.stdout.write(
  `inputs ${inputs.length}, stack traces ${counts.trace}, hangs ${counts.hang}, ` +
    `errors not on one vireo: line ${counts.untidy}\n`,
);
process.exitCode = counts.trace + counts.hang + counts.untidy === 0 ? 0 : 1;
