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
