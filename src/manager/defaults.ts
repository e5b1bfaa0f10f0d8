/**
 * The manager's defaults that `vireo daemon --help` prints, kept apart from the modules that use them:
 * building the CLI's command tree then loads neither the worker pool (which compiles the interpreter)
 * nor the memory governor.
 */

/** Warm workers a daemon keeps by default: each holds about 19 MiB (an isolate with the modules loaded). */
export const DEFAULT_WARM_WORKERS = 2;
/** Memory governor rounds start this often unless the daemon says otherwise. */
export const DEFAULT_MEMORY_INTERVAL_MS = 1000;
/** Watermarks as fractions of the memory budget, unless the daemon says otherwise. */
export const DEFAULT_MEMORY_LOW = 0.1;
export const DEFAULT_MEMORY_HIGH = 0.2;
