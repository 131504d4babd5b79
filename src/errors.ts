/**
 * An error caused by the user's input (a file, an option, a prompt): the CLI prints its
 * message as one line and exits non-zero, without a stack trace.
 */
export class SpecdecError extends Error {
  override readonly name: string = "SpecdecError";
}

/**
 * An error that names options. `text` writes each as {name}: the library's message says
 * `option "name"`, the CLI shows its flag instead (`render`).
 */
export class OptionError extends SpecdecError {
  override readonly name = "OptionError";
  constructor(readonly text: string) {
    super(text.replace(/\{(\w+)\}/g, (_, n: string) => `option "${n}"`));
  }

  /** The message with each option named by `flag(name)`. */
  render(flag: (name: string) => string): string {
    return this.text.replace(/\{(\w+)\}/g, (_, n: string) => flag(n));
  }
}

// Characters a one-line message must not carry as they are: C0 and C1 controls and DEL (newlines,
// terminal escapes, NUL), the Unicode line and paragraph separators, bidirectional overrides
// (they reorder what follows on the terminal), and lone surrogates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with every unsafe character written as a \uXXXX escape (a backslash doubled only then). */
export function escapeControls(text: string): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(text)) return text;
  return text.replace(/\\/g, "\\\\").replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The longest part of a file-provided string a message quotes. */
export const EXCERPT_LENGTH = 64;

/**
 * A string that came from a file (a key, a tensor name, a token, an architecture name) or from
 * free text, made fit to quote in a one-line message: as it is when short and printable;
 * otherwise its first EXCERPT_LENGTH characters with unsafe ones escaped, marked as cut and
 * followed by the full length, so a corrupt file never pours megabytes of bytes into a message.
 */
export function excerpt(text: string, max = EXCERPT_LENGTH): string {
  if (text.length <= max) return escapeControls(text);
  // Cut between characters, never inside a surrogate pair.
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${escapeControls(text.slice(0, end))}… (${text.length} characters)`;
}
