/** The package's entry point: `import { Vireo } from "vireo"`. */
export { ConsoleSession } from "./console.js";
export { type ExecExit, ExecSession, type ExecStreamOptions } from "./exec.js";
export { VireoApiError, VireoConnectionError } from "./transport.js";
export type * from "./types.js";
export { OPERATIONS, Vireo, type VireoOptions } from "./vireo.js";
