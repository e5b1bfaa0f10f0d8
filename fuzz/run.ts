/**
 * `npm run fuzz`: runs fuzz targets (fuzz/targets/) for a number of cases or seconds each and prints,
 * per target, the cases run, the crashes (with seed and case index to replay one) and hangs.
 *
 *   npm run fuzz -- [--target NAME[,NAME...]] [--cases N | --seconds S] [--seed N] [--case I] [--list]
 *
 * Each target runs in a worker thread; a case that runs longer than --hang-seconds (default 20) is a
 * hang: the worker is ended, the hang reported, and the target goes on with the next case.
 */
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { runGuestFuzz } from "./guest.js";
import { caseSeed, useFuzzSizes } from "./seeds.js";
import { targets } from "./targets/index.js";
import { type CrashMessage, type DoneMessage, describeError, type WorkerJob } from "./worker.js";

const GUEST = "guest";
const SHOWN_CRASHES = 5;

interface Options {
  names: string[];
  cases: number | null;
  seconds: number | null;
  seed: number;
  replay: number | null;
  hangMs: number;
}

function usage(message: string): never {
  console.error(`fuzz: ${message}`);
  console.error(
    "usage: npm run fuzz -- [--target NAME[,NAME...]] [--cases N | --seconds S] [--seed N] [--case I] [--hang-seconds S] [--list]",
  );
  process.exit(2);
}

function parse(argv: string[]): Options {
  const all = [...targets.map((t) => t.name), GUEST];
  const o: Options = {
    names: [],
    cases: null,
    seconds: null,
    seed: (Math.random() * 2 ** 31) | 0,
    replay: null,
    hangMs: 20_000,
  };
  const int = (flag: string, text: string | undefined, min: number): number => {
    const v = Number(text);
    if (text === undefined || !Number.isSafeInteger(v) || v < min)
      usage(`${flag} needs an integer >= ${min}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = argv[i + 1];
    switch (flag) {
      case "--list":
        for (const t of targets) console.log(`${t.name.padEnd(18)} ${t.about}`);
        console.log(`${GUEST.padEnd(18)} a bare-metal riscv64 guest drives vireo run's real virtio devices`);
        process.exit(0);
        break;
      case "--target":
        for (const name of (value ?? "").split(",")) {
          if (!all.includes(name)) usage(`unknown target '${name}' (see --list)`);
          o.names.push(name);
        }
        i++;
        break;
      case "--cases":
        o.cases = int(flag, value, 1);
        i++;
        break;
      case "--seconds":
        o.seconds = int(flag, value, 1);
        i++;
        break;
      case "--seed":
        o.seed = int(flag, value, -(2 ** 31)) | 0;
        i++;
        break;
      case "--case":
        o.replay = int(flag, value, 0);
        i++;
        break;
      case "--hang-seconds":
        o.hangMs = int(flag, value, 1) * 1000;
        i++;
        break;
      default:
        usage(`unknown option ${flag}`);
    }
  }
  if (o.cases !== null && o.seconds !== null) usage("give --cases or --seconds, not both");
  if (o.names.length === 0) o.names = all;
  if (o.replay !== null && o.names.length !== 1) usage("--case replays one case of one --target");
  return o;
}

interface Result {
  cases: number;
  crashes: { index: number; error: string }[];
  hangs: number[];
  ms: number;
}

/** Runs cases [from, to) of one target in workers until done, restarting after a hang. */
async function fuzzTarget(name: string, o: Options, to: number, deadline: number): Promise<Result> {
  const result: Result = { cases: 0, crashes: [], hangs: [], ms: 0 };
  const started = Date.now();
  let from = 0;
  while (from < to && Date.now() < deadline) {
    const progress = new SharedArrayBuffer(8);
    const shared = new Int32Array(progress);
    Atomics.store(shared, 0, from);
    const job: WorkerJob = { target: name, seed: o.seed, from, to, deadline, progress };
    const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: job });
    const next = await new Promise<number>((resolve) => {
      let last = from;
      let since = Date.now();
      const timer = setInterval(() => {
        const now = Atomics.load(shared, 0);
        if (now !== last) {
          last = now;
          since = Date.now();
        } else if (Date.now() - since > o.hangMs && Atomics.load(shared, 1) === 0) {
          clearInterval(timer);
          result.hangs.push(now);
          void worker.terminate().then(() => resolve(now + 1));
        }
      }, 250);
      worker.on("message", (m: CrashMessage | DoneMessage) => {
        if (m.kind === "crash") result.crashes.push({ index: m.index, error: m.error });
        else {
          clearInterval(timer);
          resolve(m.next);
        }
      });
      worker.on("error", (e) => {
        // An error that escapes a case (a worker cannot catch e.g. a stack overflow in a message handler).
        clearInterval(timer);
        const at = Atomics.load(shared, 0);
        result.crashes.push({ index: at, error: `worker died: ${describeError(e)}` });
        resolve(at + 1);
      });
    });
    result.cases += next - from;
    from = next;
  }
  result.ms = Date.now() - started;
  return result;
}

async function replay(name: string, o: Options, index: number): Promise<void> {
  const target = targets.find((t) => t.name === name);
  if (target === undefined) usage(`--case does not apply to '${name}'`);
  const [input] = fc.sample(target.input, { seed: caseSeed(o.seed, index), numRuns: 1 });
  console.log(`${name} seed=${o.seed} case=${index}\ninput: ${fc.stringify(input).slice(0, 4000)}`);
  try {
    await target.run(input);
    console.log("no crash");
  } catch (e) {
    console.log(e instanceof Error ? (e.stack ?? String(e)) : String(e));
    process.exit(1);
  }
}

async function main(): Promise<void> {
  useFuzzSizes();
  const o = parse(process.argv.slice(2));
  if (o.replay !== null) return replay(o.names[0] as string, o, o.replay);
  const cases = o.cases ?? (o.seconds === null ? 2000 : Number.MAX_SAFE_INTEGER);
  console.log(
    `fuzz: seed ${o.seed}, ${o.seconds === null ? `${cases} cases` : `${o.seconds} s`} per target, node ${process.version}`,
  );
  let total = 0;
  let failures = 0;
  for (const name of o.names) {
    const deadline = o.seconds === null ? Number.POSITIVE_INFINITY : Date.now() + o.seconds * 1000;
    const r =
      name === GUEST
        ? await runGuestFuzz({
            seed: o.seed,
            requests: o.cases ?? (o.seconds === null ? 2000 : o.seconds * 15),
          })
        : await fuzzTarget(name, o, cases, deadline);
    total += r.cases;
    failures += r.crashes.length + r.hangs.length;
    const rate = r.ms > 0 ? Math.round((r.cases * 1000) / r.ms) : 0;
    console.log(
      `${name.padEnd(18)} cases ${String(r.cases).padStart(9)}  crashes ${r.crashes.length}  hangs ${r.hangs.length}  seed ${o.seed}  ${(r.ms / 1000).toFixed(1)} s (${rate}/s)`,
    );
    for (const c of r.crashes.slice(0, SHOWN_CRASHES)) {
      console.log(
        `  crash at case ${c.index} (replay: npm run fuzz -- --target ${name} --seed ${o.seed} --case ${c.index})`,
      );
      console.log(`    ${c.error}`);
    }
    if (r.crashes.length > SHOWN_CRASHES) console.log(`  ... and ${r.crashes.length - SHOWN_CRASHES} more`);
    for (const h of r.hangs)
      console.log(`  hang at case ${h} (replay: --target ${name} --seed ${o.seed} --case ${h})`);
  }
  console.log(`fuzz: ${total} cases in all, ${failures} failures`);
  process.exitCode = failures > 0 ? 1 : 0;
}

await main();
