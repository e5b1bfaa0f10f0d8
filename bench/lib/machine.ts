import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";

/** One line per fact about the machine a benchmark ran on, for the report header. */
export function machineInfo(): string[] {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) model = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()'s model
  }
  const mhz = cpus()[0]?.speed;
  return [
    `cpu: ${model}${mhz ? ` (${mhz} MHz)` : ""}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node: ${process.version} (V8 ${process.versions.v8}), ${process.platform}-${process.arch}`,
    `load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
    `date: ${new Date().toISOString()}`,
  ];
}
