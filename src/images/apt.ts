/**
 * A private apt configuration: its own state, lists, status file and cache under Vireo's cache dir, one
 * sources line for a foreign architecture and suite, passed to apt-get/apt-cache through APT_CONFIG. It
 * leaves the system's apt state alone, needs no multiarch setup and no root (apt-get update and
 * apt-get download only write into the private folders and the download dir).
 *
 * The mirror is the one the system already uses, read from its own sources at run time.
 */
import { spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { delimiter, join } from "node:path";
import { UserError } from "../util/errors.js";

/** The keyring that signs the Debian archive (package debian-archive-keyring). */
export const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

export const NEEDS_APT =
  "vireo needs apt (Debian/Ubuntu) to fetch guest images; use --kernel/--initrd with your own files";

export const NEEDS_DPKG =
  "vireo needs dpkg-deb (Debian/Ubuntu) to unpack guest image packages; use --kernel/--initrd with your own files";

// ---------------------------------------------------------------------------------------------------------
// The system's sources

export interface SourceEntry {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Lower-cased option names → values ("signed-by", "arch", …). */
  options: Record<string, string>;
  enabled: boolean;
  /** Where it was read from, for messages. */
  file: string;
}

/** Parses deb822 sources (`*.sources`): stanzas of `Field: value` lines, `#` comments, continuation lines. */
export function parseDeb822Sources(text: string, file = "<sources>"): SourceEntry[] {
  const entries: SourceEntry[] = [];
  let fields = new Map<string, string>();
  let last: string | undefined;
  const flush = () => {
    if (fields.size > 0) {
      const list = (key: string) => (fields.get(key) ?? "").split(/\s+/).filter((s) => s !== "");
      const options: Record<string, string> = {};
      for (const [key, value] of fields) {
        if (!["types", "uris", "suites", "components", "enabled"].includes(key)) options[key] = value.trim();
      }
      entries.push({
        types: list("types"),
        uris: list("uris"),
        suites: list("suites"),
        components: list("components"),
        options,
        enabled: !/^(no|false|0)$/i.test((fields.get("enabled") ?? "yes").trim()),
        file,
      });
    }
    fields = new Map();
    last = undefined;
  };
  for (const raw of text.split(/\r?\n/)) {
    if (raw.startsWith("#")) continue;
    if (raw.trim() === "") {
      flush();
      continue;
    }
    if (/^\s/.test(raw)) {
      if (last !== undefined) fields.set(last, `${fields.get(last) ?? ""}\n${raw.trim()}`);
      continue;
    }
    const colon = raw.indexOf(":");
    if (colon <= 0) continue;
    last = raw.slice(0, colon).trim().toLowerCase();
    fields.set(last, raw.slice(colon + 1).trim());
  }
  flush();
  return entries;
}

/** Parses one-line sources (`sources.list`, `*.list`): `deb [opt=value …] uri suite [component …]`. */
export function parseOneLineSources(text: string, file = "<sources.list>"): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const match = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (match === null) continue;
    const options: Record<string, string> = {};
    for (const option of (match[2] ?? "").trim().split(/\s+/)) {
      const eq = option.indexOf("=");
      if (eq > 0) options[option.slice(0, eq).toLowerCase()] = option.slice(eq + 1);
    }
    entries.push({
      types: [match[1] as string],
      uris: [match[3] as string],
      suites: [match[4] as string],
      components: (match[5] ?? "").split(/\s+/).filter((s) => s !== ""),
      options,
      enabled: true,
      file,
    });
  }
  return entries;
}

/** Debian release codenames (recent and next) and the suite aliases. */
const DEBIAN_CODENAMES = new Set([
  "stretch",
  "buster",
  "bullseye",
  "bookworm",
  "trixie",
  "forky",
  "duke",
  "sid",
]);
const DEBIAN_ALIASES = new Set([
  "experimental",
  "oldoldstable",
  "oldstable",
  "stable",
  "testing",
  "unstable",
]);

function baseSuite(suite: string): string {
  return suite.replace(/-(updates|backports|proposed-updates|backports-sloppy)$/, "");
}

function isSecuritySuite(suite: string): boolean {
  return /-security$|\/updates$/.test(suite);
}

/**
 * How much an entry looks like the main Debian archive (0: not at all): signed by the Debian archive
 * keyring +2, a Debian codename +2, only an alias such as "stable" (third-party repositories use those
 * too) +1. Security suites, deb-src, disabled entries, cdrom: and entries without "main" do not count.
 */
function debianScore(entry: SourceEntry): number {
  if (!entry.enabled || !entry.types.includes("deb")) return 0;
  if (entry.components.length > 0 && !entry.components.includes("main")) return 0;
  const suites = entry.suites.filter((s) => !isSecuritySuite(s)).map(baseSuite);
  if (suites.length === 0) return 0;
  const signedByDebian = /debian-archive/.test(entry.options["signed-by"] ?? "");
  const codename = suites.some((s) => DEBIAN_CODENAMES.has(s));
  const alias = suites.some((s) => DEBIAN_ALIASES.has(s));
  if (!signedByDebian && !codename && !alias) return 0;
  return (signedByDebian ? 2 : 0) + (codename ? 2 : alias ? 1 : 0);
}

function usableUri(uri: string): boolean {
  return /^([a-z0-9]+\+)?(https?|file|ftp):/i.test(uri) && !/-security\/?$/.test(uri);
}

/** The system's main Debian archive: its URI and suite (the first base suite of its entry, "bookworm"). */
export interface MainSource {
  uri: string;
  suite: string;
}

/**
 * The system's main Debian archive: among the sources entries, the one that looks most like it (see
 * debianScore), the first of equals in apt's reading order.
 */
export function pickSource(entries: readonly SourceEntry[]): MainSource | undefined {
  let best: MainSource | undefined;
  let bestScore = 0;
  for (const entry of entries) {
    const score = debianScore(entry);
    const uri = entry.uris.find(usableUri);
    if (score > bestScore && uri !== undefined) {
      const suite = entry.suites.filter((s) => !isSecuritySuite(s)).map(baseSuite)[0] as string;
      best = { uri: uri.replace(/\/+$/, ""), suite };
      bestScore = score;
    }
  }
  return best;
}

/** The URI of the system's main Debian archive (pickSource). */
export function pickMirror(entries: readonly SourceEntry[]): string | undefined {
  return pickSource(entries)?.uri;
}

/** Reads the system's sources in apt's order: sources.list, then sources.list.d/ sorted by name. */
export function readSystemSources(etcApt = "/etc/apt"): SourceEntry[] {
  const entries: SourceEntry[] = [];
  const main = join(etcApt, "sources.list");
  if (existsSync(main)) entries.push(...parseOneLineSources(readFileSync(main, "utf8"), main));
  const partsDir = join(etcApt, "sources.list.d");
  let names: string[] = [];
  try {
    names = readdirSync(partsDir).sort();
  } catch {
    // no sources.list.d
  }
  for (const name of names) {
    const path = join(partsDir, name);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    if (name.endsWith(".sources")) entries.push(...parseDeb822Sources(text, path));
    else if (name.endsWith(".list")) entries.push(...parseOneLineSources(text, path));
  }
  return entries;
}

/** The system's Debian mirror URI, or a one-line UserError. */
export function systemMirror(etcApt = "/etc/apt"): string {
  const uri = pickMirror(readSystemSources(etcApt));
  if (uri === undefined) {
    throw new UserError(
      `no Debian mirror found in the system's apt sources (${etcApt}/sources.list, ${etcApt}/sources.list.d/); ` +
        "guest images come from Debian packages: use --kernel/--initrd with your own files",
    );
  }
  return uri;
}

/** The suite of the system's main Debian archive ("bookworm"), or undefined when none is found. */
export function systemSuite(etcApt = "/etc/apt"): string | undefined {
  return pickSource(readSystemSources(etcApt))?.suite;
}

/** The host's Debian architecture (`dpkg --print-architecture`: amd64, arm64, …), or undefined. */
export function hostDebianArch(): string | undefined {
  const r = spawnSync("dpkg", ["--print-architecture"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The private configuration

export interface AptLayout {
  root: string;
  stateDir: string;
  listsDir: string;
  statusFile: string;
  cacheDir: string;
  sourcesFile: string;
  configFile: string;
}

export function aptLayout(root: string): AptLayout {
  return {
    root,
    stateDir: join(root, "state"),
    listsDir: join(root, "state", "lists"),
    statusFile: join(root, "state", "status"),
    cacheDir: join(root, "cache"),
    sourcesFile: join(root, "sources.list"),
    configFile: join(root, "apt.conf"),
  };
}

export interface AptTarget {
  /** Debian architecture name (riscv64, amd64, …). */
  arch: string;
  suite: string;
  mirror: string;
  keyring: string;
  components?: string[];
}

/** The one-line sources list: `deb [arch=… signed-by=…] <mirror> <suite> main`. */
export function sourcesListText(target: AptTarget): string {
  const components = (target.components ?? ["main"]).join(" ");
  return `deb [arch=${target.arch} signed-by=${target.keyring}] ${target.mirror} ${target.suite} ${components}\n`;
}

function quote(value: string): string {
  if (/["\n]/.test(value)) throw new Error(`apt.conf value cannot hold quotes or newlines: ${value}`);
  return `"${value}"`;
}

/**
 * The APT_CONFIG file. The system's apt.conf.d parts are still read after it (proxies keep working);
 * everything that decides what is fetched and where it goes is set here. `sandboxUser` replaces apt's
 * `_apt` download user (needed when running as root: `_apt` cannot write into a user's folders).
 */
export function aptConfigText(
  layout: AptLayout,
  arch: string,
  options: { sandboxUser?: string } = {},
): string {
  const lines = [
    "// Written by vireo: a private apt configuration (see vireo images fetch).",
    `Dir::State ${quote(layout.stateDir)};`,
    `Dir::State::Lists ${quote(layout.listsDir)};`,
    `Dir::State::status ${quote(layout.statusFile)};`,
    `Dir::Cache ${quote(layout.cacheDir)};`,
    `Dir::Cache::archives ${quote(join(layout.cacheDir, "archives"))};`,
    `Dir::Etc::SourceList ${quote(layout.sourcesFile)};`,
    `Dir::Etc::SourceParts "/dev/null";`,
    `Dir::Etc::Preferences "/dev/null";`,
    `Dir::Etc::PreferencesParts "/dev/null";`,
    `APT::Architecture ${quote(arch)};`,
    `APT::Architectures { ${quote(arch)}; };`,
    `Acquire::Languages "none";`,
    `Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";`,
    `Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";`,
    `Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";`,
  ];
  if (options.sandboxUser !== undefined) lines.push(`APT::Sandbox::User ${quote(options.sandboxUser)};`);
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing apt-cache output

/** The `Depends:` targets of `pkg` in `apt-cache depends pkg` output (alternatives included, in order). */
export function parseDepends(text: string, pkg: string): string[] {
  const out: string[] = [];
  let inPackage = false;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    if (!/^\s/.test(line)) {
      inPackage = line.trim() === pkg;
      continue;
    }
    const match = /^\s+\|?(?:Pre)?Depends:\s+<?([^\s>]+)>?/.exec(line);
    if (inPackage && match !== null && !out.includes(match[1] as string)) out.push(match[1] as string);
  }
  return out;
}

/** The versioned kernel package a `linux-image-<flavour>` metapackage depends on. */
export function resolveKernelPackage(dependsOutput: string, metaPackage: string): string {
  const flavour = metaPackage.replace(/^linux-image-/, "");
  const pattern = new RegExp(`^linux-image-\\d[^\\s]*-${flavour.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const found = parseDepends(dependsOutput, metaPackage).find((name) => pattern.test(name));
  if (found === undefined) {
    throw new UserError(`${metaPackage} does not depend on a versioned kernel package (apt-cache depends)`);
  }
  return found;
}

/**
 * The versioned kernel packages of one flavour named in `apt-cache search --names-only` output
 * (`linux-image-6.12.117+deb13-riscv64`, `linux-image-6.1.0-50-amd64`), without the other flavours that
 * share the suffix (`-cloud-amd64`, `-rt-amd64`) or the debug and unsigned builds.
 */
export function parseKernelNames(searchOutput: string, flavour: string): string[] {
  const escaped = flavour.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^linux-image-\\d+\\.\\d+[\\d.]*(?:-\\d+)?(?:\\+deb\\d+)?-${escaped}$`);
  const names = searchOutput.split(/\r?\n/).map((line) => line.split(" - ")[0]?.trim() ?? "");
  return [...new Set(names.filter((name) => pattern.test(name)))].sort();
}

/**
 * Whether a kernel package is the one `wanted` names: its Debian version (`6.12.107-1`), its release
 * (`6.12.107+deb13-riscv64`, with or without the flavour) or its upstream version (`6.12.107`).
 */
export function kernelVersionMatches(
  name: string,
  version: string,
  wanted: string,
  flavour: string,
): boolean {
  const release = name.replace(/^linux-image-/, "");
  const upstream = version.split(/[-+~]/)[0];
  return (
    wanted === version ||
    wanted === release ||
    wanted === release.slice(0, -(flavour.length + 1)) ||
    wanted === upstream
  );
}

/** Splits `apt-cache show` / control-file text into stanzas of fields (keys as written). */
export function parseControl(text: string): Record<string, string>[] {
  const stanzas: Record<string, string>[] = [];
  let current: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") {
      if (Object.keys(current).length > 0) stanzas.push(current);
      current = {};
      last = undefined;
      continue;
    }
    if (/^\s/.test(line)) {
      if (last !== undefined) current[last] += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    current[last] = line.slice(colon + 1).trim();
  }
  if (Object.keys(current).length > 0) stanzas.push(current);
  return stanzas;
}

export interface PackageInfo {
  name: string;
  version: string;
  architecture: string;
  /** Size of the .deb in bytes. */
  size: number;
  sha256: string;
  filename: string;
}

export function packageInfo(stanza: Record<string, string>): PackageInfo {
  const name = stanza.Package;
  const version = stanza.Version;
  const size = Number(stanza.Size);
  if (name === undefined || version === undefined || !Number.isFinite(size)) {
    throw new Error(`apt-cache show: incomplete record ${JSON.stringify(stanza).slice(0, 200)}`);
  }
  return {
    name,
    version,
    architecture: stanza.Architecture ?? "",
    size,
    sha256: stanza.SHA256 ?? "",
    filename: stanza.Filename ?? "",
  };
}

/**
 * The most useful line of apt's output after a failure: its first error (`E:`), else a failed fetch
 * (`W: Failed to fetch …`, `Err:` with the reason on the next line), else the last line.
 */
export function aptErrorLine(output: string): string {
  const lines = output.split(/\r?\n/).filter((l) => l.trim() !== "");
  const fetch = lines.find((l) => /^W: Failed to fetch/.test(l));
  const error = lines.find((l) => /^E: /.test(l) && !/^E: Some index files failed/.test(l));
  const pick = error ?? fetch;
  if (pick !== undefined) return pick.replace(/^[EW]: /, "").replace(/\s+/g, " ");
  const err = lines.findIndex((l) => /^Err:/.test(l));
  if (err >= 0) return `${lines[err]} ${(lines[err + 1] ?? "").trim()}`.replace(/\s+/g, " ");
  return (lines[lines.length - 1] ?? "no output").trim();
}

/** Whether `apt-get update` output reports an index it could not get (it still exits 0 for those). */
export function updateFailed(output: string): boolean {
  return /^(E: |W: Failed to fetch|W: Some index files failed|Err:)/m.test(output);
}

// ---------------------------------------------------------------------------------------------------------
// Running apt

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion, capturing its output; a missing tool is `missing` (a UserError message). */
export function runTool(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; missing: string },
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      reject(e.code === "ENOENT" ? new UserError(options.missing) : e);
    });
    child.on("close", (code, signal) => {
      resolve({
        code: code ?? (signal === null ? 1 : 128),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}

/** Whether `command` is an executable file in one of $PATH's directories. */
export function onPath(command: string, path: string = process.env.PATH ?? ""): boolean {
  return path.split(delimiter).some((dir) => {
    if (dir === "") return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return statSync(join(dir, command)).isFile();
    } catch {
      return false;
    }
  });
}

/** apt-get, apt-cache and dpkg-deb must be installed (else the one-line UserErrors above). */
export function requireAptTools(): void {
  if (!onPath("apt-get") || !onPath("apt-cache")) throw new UserError(NEEDS_APT);
  if (!onPath("dpkg-deb")) throw new UserError(NEEDS_DPKG);
}

/** The size in bytes of all files directly in `dir` (0 if it does not exist). */
export function directoryBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) total += st.size;
    } catch {
      // renamed or removed while we looked
    }
  }
  return total;
}

/**
 * apt-cache and apt-get download for one architecture, with the environment `env()` gives (the system's
 * own apt configuration here; PrivateApt points it at a private one). Nothing is installed: packages are
 * only downloaded into a folder of ours.
 */
export class AptClient {
  constructor(readonly target: { arch: string; suite: string }) {}

  env(): NodeJS.ProcessEnv {
    return { ...process.env, LC_ALL: "C", LANG: "C", LANGUAGE: "" };
  }

  protected async apt(command: "apt-get" | "apt-cache", args: string[], cwd?: string): Promise<ToolResult> {
    const options: { env: NodeJS.ProcessEnv; missing: string; cwd?: string } = {
      env: this.env(),
      missing: NEEDS_APT,
    };
    if (cwd !== undefined) options.cwd = cwd;
    return runTool(command, args, options);
  }

  /** `apt-cache depends pkg` → the names it depends on. */
  async depends(pkg: string): Promise<string> {
    const r = await this.apt("apt-cache", ["depends", pkg]);
    if (r.code !== 0) throw this.notFound(pkg, r);
    return r.stdout;
  }

  /** `apt-cache show --no-all-versions pkg` → the candidate's record. */
  async show(pkg: string): Promise<PackageInfo> {
    const r = await this.apt("apt-cache", ["show", "--no-all-versions", pkg]);
    const stanza = parseControl(r.stdout)[0];
    if (r.code !== 0 || stanza === undefined) throw this.notFound(pkg, r);
    return packageInfo(stanza);
  }

  /** Every versioned kernel package of `flavour` the lists know (see parseKernelNames), with its record. */
  async kernelPackages(flavour: string): Promise<PackageInfo[]> {
    const r = await this.apt("apt-cache", ["search", "--names-only", `^linux-image-[0-9].*-${flavour}$`]);
    if (r.code !== 0) throw this.notFound(`linux-image-*-${flavour}`, r);
    return Promise.all(parseKernelNames(r.stdout, flavour).map((name) => this.show(name)));
  }

  protected notFound(pkg: string, r: ToolResult): UserError {
    return new UserError(
      `package ${pkg} not found for ${this.target.arch} in Debian ${this.target.suite} (${aptErrorLine(
        `${r.stdout}\n${r.stderr}`,
      )})${this.downloadHint()}`,
    );
  }

  /** Appended to a failed look-up's or download's message. */
  protected downloadHint(): string {
    return "";
  }

  /**
   * `apt-get download` of exactly these versions into `dir` (created empty), calling `onBytes` with the
   * bytes downloaded so far every 200 ms; returns the .deb paths in the order given.
   */
  async download(
    packages: readonly PackageInfo[],
    dir: string,
    onBytes?: (bytes: number) => void,
  ): Promise<string[]> {
    mkdirSync(dir, { recursive: true });
    const timer = onBytes === undefined ? undefined : setInterval(() => onBytes(directoryBytes(dir)), 200);
    let r: ToolResult;
    try {
      r = await this.apt(
        "apt-get",
        ["-q", "download", ...packages.map((p) => `${p.name}=${p.version}`)],
        dir,
      );
    } finally {
      if (timer !== undefined) clearInterval(timer);
    }
    if (r.code !== 0) {
      throw new UserError(
        `apt-get download failed: ${aptErrorLine(`${r.stdout}\n${r.stderr}`)}${this.downloadHint()}`,
      );
    }
    const files = readdirSync(dir).filter((n) => n.endsWith(".deb"));
    return packages.map((p) => {
      const file = files.find((n) => n.startsWith(`${p.name}_`));
      if (file === undefined) throw new Error(`apt-get download left no .deb for ${p.name} in ${dir}`);
      return join(dir, file);
    });
  }
}

/**
 * The system's own apt (its sources, lists and architecture), read-only: apt-cache look-ups and
 * apt-get download into our folder, never an install or an update of its lists.
 */
export class SystemApt extends AptClient {
  protected override downloadHint(): string {
    return " (are the system's package lists current? 'apt-get update' as root refreshes them)";
  }
}

export class PrivateApt extends AptClient {
  readonly layout: AptLayout;

  constructor(
    root: string,
    override readonly target: AptTarget,
  ) {
    super(target);
    this.layout = aptLayout(root);
  }

  /** Creates the folders and writes the status, sources and config files. */
  prepare(): void {
    requireAptTools();
    if (!existsSync(this.target.keyring)) {
      throw new UserError(
        `${this.target.keyring} not found: install the debian-archive-keyring package to fetch guest images`,
      );
    }
    const l = this.layout;
    for (const dir of [join(l.listsDir, "partial"), join(l.cacheDir, "archives", "partial")]) {
      mkdirSync(dir, { recursive: true });
    }
    if (!existsSync(l.statusFile)) writeFileSync(l.statusFile, "");
    writeFileSync(l.sourcesFile, sourcesListText(this.target));
    const root = typeof process.getuid === "function" && process.getuid() === 0;
    writeFileSync(l.configFile, aptConfigText(l, this.target.arch, root ? { sandboxUser: "root" } : {}));
  }

  override env(): NodeJS.ProcessEnv {
    return { ...super.env(), APT_CONFIG: this.layout.configFile };
  }

  /** `apt-get update` of the private lists; a fetch failure becomes apt's own error line. */
  async update(): Promise<void> {
    const r = await this.apt("apt-get", ["-q", "update"]);
    const output = `${r.stdout}\n${r.stderr}`;
    if (r.code !== 0 || updateFailed(output)) {
      throw new UserError(
        `apt-get update (${this.target.suite} ${this.target.arch}) failed: ${aptErrorLine(output)}`,
      );
    }
  }
}
