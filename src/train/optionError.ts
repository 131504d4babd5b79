// Errors about the options a trainer was given. The library names options as the trainers'
// option objects do (`resume`, `checkpoint`, `batch`, ...); the CLI names them by its flags
// (`--resume`, ...). So such an error keeps how to say it with any naming: `describe` writes the
// message given how to write an option's name; the message itself uses the option names.
import { OptionError } from "../errors.js";

/** Writes a message, naming each option through `option`. */
export type OptionMessage = (option: (name: string) => string) => string;

export class TrainOptionError extends OptionError {
  /** The options the message names, in order. */
  readonly options: readonly string[];
  readonly describe: OptionMessage;

  constructor(describe: OptionMessage) {
    const named: string[] = [];
    super(describe((name) => (named.push(name), `{${name}}`)));
    this.message = describe((name) => name);
    this.options = named;
    this.describe = describe;
  }
}
