import { Command } from "commander";
import { SpecdecError } from "../errors.js";
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
    .configureOutput({ outputError: (s, write) => write(s.startsWith("error:") ? `specdec: ${s}` : s) });

  addGenerateCommand(cli);
  addDemoCommand(cli);
  addInflateCommand(cli);
  addBenchCommand(cli);
  addServeCommand(cli);
  addTrainCommand(cli);
  return cli;
}

export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    await program().parseAsync(argv);
  } catch (e) {
    code = 1;
    if (e instanceof SpecdecError) process.stderr.write(`specdec: error: ${cliMessage(e)}\n`);
    else if (process.env.SPECDEC_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    else process.stderr.write(`specdec: internal error: ${String((e as Error)?.message ?? e).split("\n")[0]} (set SPECDEC_DEBUG=1 for details)\n`);
  }
  // llama.cpp's worker threads would keep the process alive: exit explicitly once output is flushed.
  process.stdout.write("", () => process.exit(code));
}
