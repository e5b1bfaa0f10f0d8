/** Where the daemon keeps its state and its socket, shared by `vireo daemon` and `vireo vm`. */
import { homedir } from "node:os";
import { join } from "node:path";

/** $XDG_STATE_HOME/vireo, else ~/.local/state/vireo (the XDG base directory default). */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME;
  return join(base !== undefined && base !== "" ? base : join(homedir(), ".local", "state"), "vireo");
}

/** $XDG_RUNTIME_DIR/vireo/vireo.sock, else vireo.sock in the state directory. */
export function defaultSocket(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== "") return join(runtime, "vireo", "vireo.sock");
  return join(defaultStateDir(env), "vireo.sock");
}
