/**
 * Live line charts in uPlot. Each keeps its last WINDOW points; its element carries the number of
 * points and the last values as data attributes, so what it shows can be read without the canvas.
 */
import uPlot from "uplot";
import { h } from "./dom.js";

const WINDOW = 120;
const COLORS = ["#1f6fb2", "#c2410c", "#15803d", "#7c3aed"];

export class LiveChart {
  readonly el: HTMLElement;
  private readonly plot: uPlot;
  private readonly data: (number | null)[][];

  constructor(key: string, title: string, series: string[]) {
    this.el = h("div", { class: "chart", id: `chart-${key}`, "data-points": 0 });
    this.data = [[], ...series.map(() => [])];
    this.plot = new uPlot(
      {
        title,
        width: 330,
        height: 170,
        legend: { show: series.length > 1 },
        scales: { x: { time: true } },
        series: [{}, ...series.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5 }))],
      },
      this.data as uPlot.AlignedData,
      this.el,
    );
  }

  /** One point per series at `seconds` (epoch seconds); null where the VM does not report it. */
  push(seconds: number, values: (number | null)[]): void {
    (this.data[0] as (number | null)[]).push(seconds);
    for (const [i, v] of values.entries()) (this.data[i + 1] as (number | null)[]).push(v);
    if ((this.data[0] as (number | null)[]).length > WINDOW) for (const column of this.data) column.shift();
    this.plot.setData(this.data as uPlot.AlignedData);
    this.el.dataset.points = String((this.data[0] as (number | null)[]).length);
    this.el.dataset.last = values.map((v) => (v === null ? "" : v.toFixed(3))).join(",");
  }

  dispose(): void {
    this.plot.destroy();
  }
}
