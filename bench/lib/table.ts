/** Plain-text tables in Markdown pipe syntax, so output can be pasted into docs/BENCHMARKS.md. */

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** Fixed decimals, or a dash when the value is missing. */
export function fmt(value: number | undefined, decimals: number): string {
  return value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(decimals);
}

/** 196522260 → "196,522,260". */
export function fmtCount(value: number | undefined): string {
  return value === undefined ? "–" : value.toLocaleString("en-US");
}
