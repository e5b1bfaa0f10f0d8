/**
 * The CLI on commander: generated help for every verb, commander's errors as one `vireo: …` line with
 * status 2, repeated flags, and `vm create`'s device flags building the spec `vireo run` boots.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { addFlags, type FlagSpec, type ParsedArgs, parsedArgs } from "../../src/cli/flags.js";
import { DEVICE_FLAGS, runSpecFromFlags, vmSpecFromFlags } from "../../src/cli/run-spec.js";
import { startDaemon, tempDir } from "../api/support.js";
import { describe, test } from "../support/test.js";
import { assertUserError, repoRoot, vireo } from "./vireo.js";

const demo = join(repoRoot, "demo/hello.elf");
const names = (spec: FlagSpec) => Object.keys(spec).map((n) => `--${n}`);

/** The flags as `cmd` parses them (commander, as the CLI uses it, with errors thrown). */
function parse(spec: FlagSpec, argv: string[]): ParsedArgs {
  const cmd = addFlags(new Command("t").exitOverride(), spec);
  cmd.parse(argv, { from: "user" });
  return parsedArgs(cmd, spec);
}

describe("vireo on commander", () => {
  test("every verb has a generated --help that lists its flags", { timeout: 120_000 }, () => {
    const cases: [string[], string[]][] = [
      [[], ["run", "images", "daemon", "vm", "pool", "--version"]],
      [["run"], [...names(DEVICE_FLAGS), "--stats", "--dump-dtb", "--root-disk"]],
      [["images"], ["fetch", "list", "path"]],
      [
        ["images", "fetch"],
        ["--arch", "--force", "--keep-debs", "--kernel-version"],
      ],
      [["images", "path"], ["--arch"]],
      [["daemon"], ["--socket", "--state-dir", "--stop-grace-ms", "--openapi"]],
      [["vm"], ["create", "list", "show", "start", "stop", "pause", "resume", "kill", "rm", "stats"]],
      [["pool"], ["create", "list", "show", "acquire", "release", "rm"]],
      [
        ["pool", "create"],
        ["--size", "--spec", "--name", "--ready-marker", "--ready-on-start", "--kernel"],
      ],
      [
        ["vm", "create"],
        ["--name", "--spec", "--json", "--socket", ...names(DEVICE_FLAGS)],
      ],
      [
        ["vm", "list"],
        ["--label", "--json", "--socket"],
      ],
      [
        ["vm", "stop"],
        ["--grace-ms", "--json", "--socket"],
      ],
      [
        ["vm", "show"],
        ["<name>", "--json"],
      ],
      [
        ["vm", "exec"],
        ["<name>", "[command...]", "--env", "--timeout-ms", "--socket"],
      ],
      [
        ["vm", "cp"],
        ["<source>", "<dest>", "--socket"],
      ],
    ];
    for (const [verb, expected] of cases) {
      const r = vireo(...verb, "--help");
      assert.equal(r.status, 0, `vireo ${verb.join(" ")} --help: ${r.stderr}`);
      assert.equal(r.stderr, "");
      assert.match(r.stdout, new RegExp(`^Usage: vireo${verb.map((v) => ` ${v}`).join("")} `));
      for (const flag of expected)
        assert.ok(r.stdout.includes(flag), `vireo ${verb.join(" ")} --help: no ${flag}`);
    }
    assert.equal(vireo("--version").stdout, "vireo 0.1.0\n");
    // A group verb on its own does nothing: its help, and status 2 as for any incomplete command.
    for (const verb of [[], ["images"], ["vm"]]) {
      const r = vireo(...verb);
      assert.equal(r.status, 2);
      assert.match(r.stdout, /^Usage: vireo/);
    }
  });

  test("unknown flags, missing values, stray arguments: one line, status 2", { timeout: 120_000 }, () => {
    assertUserError(vireo("run", "--frobnicate"), /^vireo: unknown option --frobnicate for 'vireo run'$/);
    assertUserError(vireo("vm", "create", "--colour"), /unknown option --colour for 'vireo vm create'/);
    assertUserError(vireo("daemon", "--sockt", "x"), /unknown option --sockt .*Did you mean --socket\?/);
    assertUserError(vireo("images", "fetch", "--nope"), /unknown option --nope for 'vireo images fetch'/);
    assertUserError(vireo("run", "--version"), /unknown option --version for 'vireo run'/);
    assertUserError(vireo("run", "--memory"), /^vireo: --memory needs a value$/);
    assertUserError(vireo("vm", "exec", "g"), /^vireo: 'vm exec' needs a command/);
    assertUserError(
      vireo("vm", "exec", "g", "--env", "NOEQUALS", "--", "true"),
      /--env NOEQUALS: expected KEY=VALUE/,
    );
    assertUserError(vireo("vm", "cp", "a", "b"), /one side in a guest/);
    assertUserError(vireo("vm", "cp", "a", "g:relative"), /the guest path must be absolute/);
    assertUserError(vireo("vm", "create", "--name", "a", "--kernel="), /^vireo: --kernel needs a value$/);
    assertUserError(vireo("run", "--rng=on"), /^vireo: --rng takes no value$/);
    assertUserError(vireo("run", "--cpus", "1", "--cpus", "2"), /^vireo: --cpus given twice$/);
    assertUserError(vireo("vm", "create", "--rng", "--rng"), /^vireo: --rng given twice$/);
    assertUserError(vireo("run", "stray"), /unexpected argument 'stray' for 'vireo run'/);
    assertUserError(vireo("vm", "show"), /'vireo vm show' needs NAME/);
    assertUserError(vireo("vm", "show", "a", "b"), /unexpected argument 'b'/);
    assertUserError(vireo("vm", "launch"), /unknown vm command 'launch' \(one of: create, list/);
    assertUserError(vireo("vm", "create"), /'vm create' needs --name NAME/);
    assertUserError(
      vireo("vm", "create", "--name", "a", "--spec", "s.json", "--rng"),
      /--spec and --rng do not mix/,
    );
  });

  test("a repeatable flag collects every value in order", () => {
    const args = parse(DEVICE_FLAGS, [
      "--drive",
      "file=a",
      "--net",
      "switch",
      "--drive=file=b",
      "--net",
      "tap:t0",
    ]);
    assert.deepEqual(args.repeated.get("drive"), ["file=a", "file=b"]);
    assert.deepEqual(args.repeated.get("net"), ["switch", "tap:t0"]);
    assert.equal(parse(DEVICE_FLAGS, []).repeated.size, 0);
    assert.throws(() => parse(DEVICE_FLAGS, ["--memory", "1M", "--memory", "2M"]), /--memory given twice/);
  });

  test("vm create's device flags build the spec vireo run boots, named, with absolute paths", async () => {
    const argv = [
      "--bios",
      "none",
      "--kernel",
      demo,
      "--memory",
      "64M",
      "--cpus",
      "2",
      "--drive",
      `file=${join(repoRoot, "a.img")},readonly=on`,
      "--drive",
      `file=${join(repoRoot, "b.img")},id=data`,
      "--net",
      "switch:lan,mac=52:54:00:00:00:09",
      "--rng",
      "--virtio-console",
      "--balloon-target",
      "8M",
      "--vsock",
      "cid=7",
      "--virtio-ring",
      "split",
      "--max-insns",
      "1000",
    ];
    const run = (await runSpecFromFlags(parse(DEVICE_FLAGS, argv))).spec;
    const created = await vmSpecFromFlags(parse(DEVICE_FLAGS, argv), "flags1");
    assert.deepEqual(created, { ...run, name: "flags1" });
    assert.equal(created.drives.length, 2);
    assert.equal(created.nics[0]?.mac, "52:54:00:00:00:09");

    // Paths as written are relative to the directory vireo runs in; the daemon gets them absolute.
    const cwd = process.cwd();
    process.chdir(repoRoot);
    try {
      const relative = [
        "--bios",
        "none",
        "--kernel",
        "demo/hello.elf",
        "--drive",
        "file=x.img",
        "--vsock",
        "cid=3,uds=v.sock",
      ];
      const spec = await vmSpecFromFlags(parse(DEVICE_FLAGS, relative), "rel");
      assert.equal(spec.boot.kernel, demo);
      assert.equal(spec.drives[0]?.path, resolve(repoRoot, "x.img"));
      assert.equal(spec.vsock?.uds, resolve(repoRoot, "v.sock"));
      assert.equal(
        (await runSpecFromFlags(parse(DEVICE_FLAGS, relative))).spec.boot.kernel,
        "demo/hello.elf",
      );
    } finally {
      process.chdir(cwd);
    }
    await assert.rejects(
      vmSpecFromFlags(parse(DEVICE_FLAGS, ["--bios", "none", "--kernel", demo]), "no name!"),
      /--name/,
    );
  });

  test("vireo vm create with device flags, through a running daemon", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const daemon = await startDaemon(dir);
    try {
      const argv = [
        "--bios",
        "none",
        "--kernel",
        "demo/hello.elf",
        "--memory",
        "16M",
        "--rng",
        "--cpus",
        "1",
      ];
      const r = spawnSync(
        process.execPath,
        [
          join(repoRoot, "dist/src/cli/main.js"),
          "vm",
          "create",
          "--name",
          "flags1",
          ...argv,
          "--json",
          "--socket",
          daemon.socket,
        ],
        { cwd: repoRoot, encoding: "utf8", timeout: 30_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const answer = JSON.parse(r.stdout) as { name: string; spec: unknown };
      assert.equal(answer.name, "flags1");
      const cwd = process.cwd();
      process.chdir(repoRoot);
      let expected: unknown;
      try {
        expected = await vmSpecFromFlags(parse(DEVICE_FLAGS, argv), "flags1");
      } finally {
        process.chdir(cwd);
      }
      assert.deepEqual(answer.spec, expected);
    } finally {
      daemon.child.kill("SIGKILL");
      await daemon.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
