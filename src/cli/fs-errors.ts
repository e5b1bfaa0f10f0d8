/** File system errors in the words of a one-line CLI error. */

/** What an errno means, in the words of the error line. */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "no such file or directory",
  ENOTDIR: "a part of the path is not a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "path too long",
  EISDIR: "is a directory",
  ENOSPC: "no space left on the device",
  EROFS: "read-only file system",
  EIO: "input/output error",
};

/** "no such file or directory (ENOENT)", or the error's message when it has no code. */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === undefined) return (e as Error).message ?? String(e);
  const words = ERRNO_WORDS[code];
  return words === undefined ? code : `${words} (${code})`;
}
