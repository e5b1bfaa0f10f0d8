/**
 * What a fuzz target is: an input generator (a fast-check arbitrary) and a function that runs one input
 * against the code under test and throws when it finds a crash. A throw of the error type the code
 * documents for bad input is not a crash: targets catch those themselves (see `allowing`).
 */
import type fc from "fast-check";

export interface Target<T = unknown> {
  readonly name: string;
  /** One line for --list: what is exercised and what counts as a crash. */
  readonly about: string;
  readonly input: fc.Arbitrary<T>;
  /** Throws (or rejects) on a crash; a target whose code under test is asynchronous returns a promise. */
  run(input: T): void | Promise<void>;
}

/** A broken invariant (as opposed to an exception thrown by the code under test). */
export class InvariantError extends Error {
  override name = "InvariantError";
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

/**
 * Runs `fn`; an error `documented` accepts (the code's documented answer to bad input) is swallowed and
 * reported as false, anything else is rethrown as the crash it is.
 */
export function allowing(documented: (e: unknown) => boolean, fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (documented(e)) return false;
    throw e;
  }
}

/** Restores and parsers document TypeError/RangeError (validation) and nothing else. */
export function isValidationError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError;
}

export function defineTarget<T>(t: Target<T>): Target<unknown> {
  return t as Target<unknown>;
}
