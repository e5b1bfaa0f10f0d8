/**
 * The entry module of a daemon's VM worker threads: the manager's WorkerVm starts this file, and it
 * runs the VM on the Node host (nodeVmHost lives here in cli/, which the manager may not import).
 * Imported on the main thread it only names itself.
 */
import { isVmWorker, runVmWorker } from "../manager/vm-worker.js";
import { nodeVmHost } from "./vm-host.js";

export const vmWorkerEntry = new URL(import.meta.url);

if (isVmWorker()) await runVmWorker((options) => nodeVmHost(options));
