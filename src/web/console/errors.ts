/**
 * Every failure the page meets is listed at its top until dismissed: API errors (with the daemon's
 * message and the fields it names), a console that closed on us, and anything thrown that no page
 * caught. Nothing is only logged to the browser's console.
 */
import { h } from "./dom.js";

export function showError(where: string, error: unknown): void {
  const list = document.getElementById("errors");
  if (list === null) return;
  const text = `${where}: ${error instanceof Error ? error.message : String(error)}`;
  const item = h("li", { class: "error" }, h("span", {}, text));
  item.append(h("button", { type: "button", onclick: () => item.remove() }, "dismiss"));
  list.append(item);
}

export function clearErrors(): void {
  document.getElementById("errors")?.replaceChildren();
}

/** What no handler caught still reaches the page. */
export function catchStrays(): void {
  window.addEventListener("error", (e) => showError("error", e.error ?? e.message));
  window.addEventListener("unhandledrejection", (e) => showError("error", e.reason));
}

/** Runs `work`, showing what it throws; for event handlers, which have nobody to throw to. */
export function guarded(where: string, work: () => Promise<unknown>): () => void {
  return () => {
    work().catch((e: unknown) => showError(where, e));
  };
}
