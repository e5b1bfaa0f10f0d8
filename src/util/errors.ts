/**
 * An error caused by what the user gave us (a file, a flag, a size). The CLI prints its message on one
 * line and exits with status 2; anything else is a bug and keeps its stack trace.
 */
export class UserError extends Error {
  override name = "UserError";
}
