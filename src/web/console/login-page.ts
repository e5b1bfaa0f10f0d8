/**
 * The login form: the daemon's API token (printed at its first start, kept in its state directory as
 * api-token) becomes an HttpOnly cookie the daemon sets; a refused token is said so here.
 */
import { login } from "./api.js";
import { fill, h } from "./dom.js";
import { guarded } from "./errors.js";

export function loginPage(main: HTMLElement, done: () => void): () => void {
  const token = h("input", {
    type: "password",
    id: "token",
    name: "token",
    size: 70,
    autocomplete: "current-password",
    required: true,
  });
  const message = h("p", { id: "login-message", class: "login-error", role: "status" });
  const form = h(
    "form",
    { id: "login-form" },
    h(
      "p",
      {},
      h("label", { for: "token" }, "API token "),
      token,
      " ",
      h("button", { type: "submit" }, "Log in"),
    ),
    h(
      "p",
      { class: "note" },
      "The token is in the daemon's state directory, in the file api-token (the daemon printed it at its first start).",
    ),
    message,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    fill(message);
    guarded("login", async () => {
      if (await login(token.value)) done();
      else fill(message, "Wrong token: the daemon refused it.");
    })();
  });
  fill(main, h("h1", {}, "Log in to the Vireo daemon"), form);
  token.focus();
  return () => {};
}
