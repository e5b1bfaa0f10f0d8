/**
 * Reads what a TypeScript source file imports and which Node globals it touches, without a parser: the
 * layer test (layers.test.ts) needs only module specifiers and a few identifiers, and a comment that
 * mentions `process.env` or an `import ... from "..."` must not count. Offsets are kept (blanked text
 * has the same length and line breaks), so every finding has its line.
 */

export interface ImportSite {
  /** The module specifier, or null for `import(expression)`, which cannot be checked. */
  specifier: string | null;
  line: number;
}

export interface GlobalUse {
  name: string;
  line: number;
}

/** Characters after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set("(,=:[!&|?{};+-*%<>~^".split(""));
const KEYWORDS_BEFORE_REGEX = /\b(?:return|typeof|case|in|of|void|delete|throw|new|yield|await)$/;

/**
 * The text with comments blanked (newlines kept) and, with `blankStrings`, the contents of string,
 * template and regex literals too (but not the code inside `${...}`).
 */
export function blank(text: string, blankStrings: boolean): string {
  const out = text.split("");
  const wipe = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  // Brace depths at which an open template literal resumes (`${` pushes, its `}` pops).
  const templates: number[] = [];
  let depth = 0;
  let i = 0;
  const n = text.length;
  const previousSignificant = (): string => {
    let k = i - 1;
    while (k >= 0 && /\s/.test(text[k] as string)) k--;
    return k < 0 ? "" : text.slice(Math.max(0, k - 7), k + 1);
  };
  const scanTemplate = () => {
    // At the character after a backtick or after the `}` closing a `${...}`.
    const start = i;
    while (i < n) {
      const c = text[i];
      if (c === "\\") i += 2;
      else if (c === "`") {
        if (blankStrings) wipe(start, i);
        i++;
        return;
      } else if (c === "$" && text[i + 1] === "{") {
        if (blankStrings) wipe(start, i);
        templates.push(depth);
        depth++;
        i += 2;
        return;
      } else i++;
    }
  };
  while (i < n) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? n : end;
      wipe(i, stop);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      wipe(i, stop);
      i = stop;
    } else if (c === '"' || c === "'") {
      const start = ++i;
      while (i < n && text[i] !== c && text[i] !== "\n") i += text[i] === "\\" ? 2 : 1;
      if (blankStrings) wipe(start, i);
      i++;
    } else if (c === "`") {
      i++;
      scanTemplate();
    } else if (c === "/") {
      const before = previousSignificant();
      const last = before.slice(-1);
      if (last === "" || BEFORE_REGEX.has(last) || KEYWORDS_BEFORE_REGEX.test(before)) {
        const start = ++i;
        let inClass = false;
        while (i < n && text[i] !== "\n") {
          const r = text[i];
          if (r === "\\") i++;
          else if (r === "[") inClass = true;
          else if (r === "]") inClass = false;
          else if (r === "/" && !inClass) break;
          i++;
        }
        if (blankStrings) wipe(start, i);
      }
      i++;
    } else if (c === "{") {
      depth++;
      i++;
    } else if (c === "}") {
      depth--;
      i++;
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        templates.pop();
        scanTemplate();
      }
    } else i++;
  }
  return out.join("");
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let k = 0; k < offset; k++) if (text.charCodeAt(k) === 10) line++;
  return line;
}

/** Static `import`/`export ... from`, side-effect imports, and dynamic `import()` (types included). */
export function imports(source: string): ImportSite[] {
  const text = blank(source, false);
  const found: ImportSite[] = [];
  const patterns = [
    /^[ \t]*(?:import|export)\s+(?:type\s+)?[\w$*{},\s]+?\s+from\s*(["'])([^"'\n]+)\1/gm,
    /^[ \t]*import\s*(["'])([^"'\n]+)\1/gm,
    /\bimport\s*\(\s*(["'`])([^"'`$\n]+)\1\s*[,)]/g,
  ];
  for (const pattern of patterns) {
    for (const m of text.matchAll(pattern)) {
      const specifier = m[2] as string;
      found.push({ specifier, line: lineAt(text, (m.index ?? 0) + m[0].lastIndexOf(specifier)) });
    }
  }
  for (const m of text.matchAll(/\bimport\s*\(/g)) {
    const rest = text.slice((m.index ?? 0) + m[0].length);
    if (!/^\s*(["'`])[^"'`$\n]+\1\s*[,)]/.test(rest)) {
      found.push({ specifier: null, line: lineAt(text, m.index ?? 0) });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

/**
 * Uses of Node's globals outside comments and literals: `process.`, `Buffer`, `__dirname`, `__filename`.
 * (`require` is left out: ESM code has none unless it imports node:module, and `require(` is also a
 * method name here.)
 */
export function nodeGlobals(source: string): GlobalUse[] {
  const text = blank(source, true);
  const found: GlobalUse[] = [];
  for (const m of text.matchAll(/(?<![.\w$])(process(?=\s*\.)|Buffer\b|__dirname\b|__filename\b)/g)) {
    found.push({ name: m[1] as string, line: lineAt(text, m.index ?? 0) });
  }
  return found;
}
