/**
 * The web console's pages, by the URL's hash: #/host, #/vms, #/create, #/vm/NAME; the login form
 * whenever the daemon answers 401. Each page returns what stops its timers and streams.
 */
import { ApiError, api, whenUnauthorized } from "./api.js";
import { createPage } from "./create-page.js";
import { fill, h } from "./dom.js";
import { catchStrays, clearErrors, guarded, showError } from "./errors.js";
import { hostPage } from "./host-page.js";
import { listPage } from "./list-page.js";
import { loginPage } from "./login-page.js";
import { vmPage } from "./vm-page.js";

let leave: () => void = () => {};

function main(): HTMLElement {
  return document.getElementById("main") as HTMLElement;
}

function go(hash: string): void {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function show(page: (el: HTMLElement) => () => void): void {
  leave();
  leave = page(main());
}

function route(): void {
  const hash = location.hash || "#/vms";
  const vm = /^#\/vm\/(.+)$/.exec(hash);
  if (vm !== null) show((el) => vmPage(el, decodeURIComponent(vm[1] as string), go));
  else if (hash === "#/host") show(hostPage);
  else if (hash === "#/create") show((el) => createPage(el, go));
  else show(listPage);
}

function showLogin(): void {
  // Several requests in flight may each be refused: one form, and what is typed in it stays.
  if (document.getElementById("login-form") !== null) return;
  fill(document.getElementById("nav") as HTMLElement);
  show((el) =>
    loginPage(el, () => {
      clearErrors();
      start();
    }),
  );
}

function start(): void {
  fill(
    document.getElementById("nav") as HTMLElement,
    h("a", { href: "#/vms" }, "VMs"),
    h("a", { href: "#/create" }, "Create"),
    h("a", { href: "#/host" }, "Host"),
    h(
      "a",
      {
        href: "#",
        id: "logout",
        onclick: (e: Event) => {
          e.preventDefault();
          guarded("logout", async () => {
            await api("POST", "/logout");
            showLogin();
          })();
        },
      },
      "Log out",
    ),
  );
  route();
}

catchStrays();
whenUnauthorized(() => showLogin());
window.addEventListener("hashchange", () => {
  if (document.getElementById("logout") !== null) route();
});
// Whether the cookie is there and good: the page cannot read it (HttpOnly), so it asks.
api("GET", "/healthz")
  .then(start)
  .catch((e: unknown) => {
    // A 401 has shown the login form already.
    if (!(e instanceof ApiError && e.status === 401)) showError("daemon", e);
  });
