/**
 * Progress reporting for long downloads, on stderr: a bar redrawn in place on a terminal, and a plain line
 * every 10 % otherwise (logs, CI), so neither floods the output.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const MB = 1_000_000;

/** "50.1/112.0 MB" style amounts (decimal megabytes, as apt prints them). */
export function formatMegabytes(bytes: number): string {
  return (bytes / MB).toFixed(1);
}

/** `[#####.....]  45% 50.1/112.0 MB`: the bar for `done` of `total` bytes, `width` cells wide. */
export function renderBar(done: number, total: number, width = 30): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(fraction * width);
  const percent = Math.floor(fraction * 100);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(percent).padStart(3)}% ${formatMegabytes(
    done,
  )}/${formatMegabytes(total)} MB`;
}

export class ProgressBar {
  private lastDecile = -1;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly total: number,
    private readonly label: string,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Reports `done` bytes so far; cheap to call often (a TTY redraw is limited to 10 per second). */
  update(done: number): void {
    const clamped = Math.min(done, this.total);
    if (this.stream.isTTY) {
      const t = this.now();
      if (this.drawn && t - this.lastDraw < 100 && clamped < this.total) return;
      this.lastDraw = t;
      this.drawn = true;
      this.stream.write(`\r${this.label} ${renderBar(clamped, this.total)}\x1b[K`);
      return;
    }
    const decile = this.total > 0 ? Math.floor((clamped / this.total) * 10) : 0;
    if (decile <= this.lastDecile) return;
    this.lastDecile = decile;
    this.stream.write(
      `${this.label} ${decile * 10}% ${formatMegabytes(clamped)}/${formatMegabytes(this.total)} MB\n`,
    );
  }

  /** Draws the final state and ends the line. */
  finish(done = this.total): void {
    this.update(done);
    if (this.stream.isTTY && this.drawn) this.stream.write("\n");
  }

  /** Ends the line without claiming completion (after a failure). */
  abandon(): void {
    if (this.stream.isTTY && this.drawn) this.stream.write("\n");
  }
}
