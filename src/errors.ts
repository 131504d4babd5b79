/**
 * An error caused by the user's input (a file, an option, a prompt): the CLI prints its
 * message as one line and exits non-zero, without a stack trace.
 */
export class SpecdecError extends Error {
  override readonly name = "SpecdecError";
}
