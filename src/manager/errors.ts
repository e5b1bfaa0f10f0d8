/**
 * What a manager operation can refuse, by kind, so that each front end maps it to its own form (the
 * API to an HTTP status, the CLI to a line): the manager knows nothing of HTTP.
 */
import { UserError } from "../util/errors.js";

/** "unavailable" and "timeout": a warm pool with nothing to hand out, now or before a deadline. */
export type ManagerErrorKind = "invalid" | "not-found" | "conflict" | "unavailable" | "timeout";

export class ManagerError extends UserError {
  override name = "ManagerError";
  constructor(
    readonly kind: ManagerErrorKind,
    message: string,
    /** For "invalid": the JSON pointer of each field at fault and what is wrong with it. */
    readonly fields: readonly { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}
