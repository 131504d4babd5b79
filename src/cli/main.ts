import { Command, CommanderError } from "commander";
import { escapeControls, SpecdecError } from "../errors.js";
import { addGenerateCommand } from "./generateCommand.js";
import { addTrainCommand } from "./trainCommand.js";
import { addDemoCommand } from "./demoCommand.js";
import { addInflateCommand } from "./inflateCommand.js";
import { addBenchCommand } from "./benchCommand.js";
import { addServeCommand } from "./serveCommand.js";
import { cliMessage } from "./methodOptions.js";

function program(): Command {
  const cli = new Command("specdec")
    .description("Speculative decoding for GGUF models: the same output as plain decoding, in fewer target passes.")
    // Commander's errors quote the user's values: one line, escaped and cut like ours. Help
    // printed because a command is missing goes to writeErr: swallowed, main() says it in a line.
    .configureOutput({ outputError: (s) => process.stderr.write(errorLine(s.replace(/^error: /, "").trimEnd())), writeErr: () => {} })
    // Commander throws instead of exiting, so main() flushes the output before the process ends.
    .exitOverride();

  addGenerateCommand(cli);
  addDemoCommand(cli);
  addInflateCommand(cli);
  addBenchCommand(cli);
  addServeCommand(cli);
  addTrainCommand(cli);
  return cli;
}

/** Longest error line the CLI prints (a path or a value the user gave may be long). */
export const ERROR_LINE_LIMIT = 1000;

/** An error message as the one line the CLI prints: unsafe characters escaped, at most ERROR_LINE_LIMIT of them. */
export function errorLine(message: string): string {
  const line = escapeControls(message);
  return `specdec: error: ${line.length > ERROR_LINE_LIMIT ? line.slice(0, ERROR_LINE_LIMIT - 1) + "…" : line}\n`;
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write("", () => resolve()));
}

/**
 * Exit with `code` once stdout and stderr are flushed: on a pipe, process.exit() would drop
 * what is still queued (an error line, the end of the output).
 */
export async function exitAfterFlush(code: number): Promise<never> {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    await program().parseAsync(argv);
  } catch (e) {
    code = 1;
    if (e instanceof CommanderError) {
      code = e.exitCode;
      // Help shown instead of running nothing: a missing (sub)command.
      if (e.code === "commander.help" && code !== 0) process.stderr.write(errorLine("missing command; add --help to see the commands"));
    } else if (process.env.SPECDEC_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    else if (e instanceof SpecdecError) process.stderr.write(errorLine(cliMessage(e)));
    else process.stderr.write(`specdec: internal error: ${escapeControls(String((e as Error)?.message ?? e).split("\n")[0]).slice(0, ERROR_LINE_LIMIT)} (set SPECDEC_DEBUG=1 for details)\n`);
  }
  // llama.cpp's worker threads would keep the process alive: exit explicitly once output is flushed.
  await exitAfterFlush(code);
}
