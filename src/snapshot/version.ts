import { UserError } from "../util/errors.js";

/**
 * The snapshot format's version: a newer major is refused (its layout may differ anywhere); a newer
 * minor only adds optional fields and sections, so it loads.
 */
export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 0;
export const FORMAT_PATCH = 0;

export function checkVersion(what: string, major: number, minor: number, patch: number): void {
  if (major > FORMAT_MAJOR) {
    throw new UserError(
      `${what}: made by a newer Vireo (snapshot format ${major}.${minor}.${patch}; this one reads ${FORMAT_MAJOR}.x)`,
    );
  }
  if (major < 1) throw new UserError(`${what}: unknown snapshot format ${major}.${minor}.${patch}`);
}
