import type { VmStats } from "../vm/vm.js";

/** `--stats`: one `stats:` line per figure on stderr, stable names so scripts can read them. */
export function printStats(stats: VmStats): void {
  process.stderr.write(
    statsLines(stats)
      .map((l) => `stats: ${l}\n`)
      .join(""),
  );
}

export function statsLines(stats: VmStats): string[] {
  const lines: string[] = [];
  const { seconds } = stats;
  if (stats.arch === "riscv64") {
    const instructions = stats.instructions ?? 0;
    const mips = seconds > 0 ? instructions / seconds / 1e6 : 0;
    lines.push(
      `instructions ${instructions}`,
      `seconds ${seconds.toFixed(3)}`,
      `mips ${mips.toFixed(1)}`,
      `hypercalls ${format(stats.hypercalls)}`,
      `traps ${format(stats.traps)}`,
      `interrupts ${format(stats.interrupts)}`,
    );
    if (stats.balloon !== undefined) lines.push(`balloon ${fields(stats.balloon)}`);
    if (stats.translation !== undefined) lines.push(`translation ${fields(stats.translation)}`);
    if (stats.translationExits !== undefined)
      lines.push(`translation-exits ${format(stats.translationExits)}`);
    if (stats.translationInterpreted !== undefined)
      lines.push(`translation-interpreted ${format(stats.translationInterpreted)}`);
    for (const v of stats.virtio ?? [])
      lines.push(`virtio${v.slot} ${v.device} irq=${v.gsi} ${fields(v.counters)}`);
  } else {
    const e = stats.exits;
    lines.push(`seconds ${seconds.toFixed(3)}`);
    if (e !== undefined) {
      lines.push(
        `exits ${e.total}`,
        `exits-forwarded ${e.forwarded}`,
        `exits-local-pio ${e.localPio}`,
        `exits-mmio ${e.mmio}`,
        `first-exit-ms ${e.firstExitMs === null ? "none" : e.firstExitMs.toFixed(1)}`,
      );
    }
    if (stats.virtioInterrupts !== undefined) lines.push(`virtio-interrupts ${stats.virtioInterrupts}`);
    for (const v of stats.virtio ?? []) {
      lines.push(`virtio${v.slot} ${v.device} gsi=${v.gsi} ${fields(v.counters)}`);
    }
    if ((stats.rejectedMsrs ?? []).length > 0) {
      lines.push(`rejected-msrs ${stats.rejectedMsrs?.map((m) => `0x${m.toString(16)}`).join(" ")}`);
    }
  }
  stats.nics.forEach((n, i) => {
    lines.push(`net${i} mac=${n.mac} ${fields(n.counters)}`);
  });
  if (stats.vsock !== undefined) lines.push(`vsock cid=${stats.vsock.cid} ${fields(stats.vsock.counters)}`);
  if (stats.keyboard !== undefined) lines.push(`keyboard ${fields(stats.keyboard)}`);
  return lines;
}

function fields(values: Record<string, number | string>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

function format(counts: [string, number][] | undefined): string {
  if (counts === undefined || counts.length === 0) return "none";
  return counts.map(([name, n]) => `${name}=${n}`).join(" ");
}
