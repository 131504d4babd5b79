import { Command, CommanderError, Option } from "commander";
import { DEFAULT_MAX_TOKENS } from "../decode/speculativeDecode.js";
import { escapeControls, SpecdecError } from "../errors.js";
import { METHODS } from "../methods.js";
import { BACKENDS } from "../backends/loadTarget.js";
import { runGenerate } from "./generateCommand.js";
import { addTrainCommand } from "./trainCommand.js";
import { addDemoCommand } from "./demoCommand.js";
import { integer, nonEmpty, real } from "./options.js";

function program(): Command {
  const cli = new Command("specdec")
    .description("Speculative decoding for GGUF models: the same output as plain decoding, in fewer target passes.")
    // Commander's errors quote the user's values: one line, escaped and cut like ours. Help
    // printed because a command is missing goes to writeErr: swallowed, main() says it in a line.
    .configureOutput({ outputError: (s) => process.stderr.write(errorLine(s.replace(/^error: /, "").trimEnd())), writeErr: () => {} })
    // Commander throws instead of exiting, so main() flushes the output before the process ends.
    .exitOverride();

  cli
    .command("generate")
    .description("generate text from a prompt, drafting guesses and verifying them losslessly")
    .option("--model <file>", "target model (GGUF); default: the stories model shipped in models/ (or in $SPECDEC_MODELS)")
    .addOption(new Option("--backend <name>", "inference backend: llama.cpp (node-llama-cpp) or builtin (specdec's own engine); default llama.cpp, or builtin for methods that draft trees (medusa, lookahead, --candidates > 1)").choices(BACKENDS))
    .option("--draft-model <file>", "helper model for --method draft (same vocabulary as the target); default with the default target: its distilled draft in models/")
    .addOption(new Option("--method <name>", "how guesses are made; default: draft with --draft-model, else prompt-lookup").choices(METHODS))
    .option("--prompt <text>", "the prompt")
    .option("--prompt-file <file>", "read the prompt from a file")
    .option("--max-tokens <n>", "most tokens to generate", integer(1, 1_000_000), DEFAULT_MAX_TOKENS)
    .option("--temperature <t>", "0 = greedy (identical tokens to plain decoding); > 0 samples (identical distribution)", real(0, 100), 0)
    .option("--top-k <k>", "keep the k most probable tokens (0 = off)", integer(0), 0)
    .option("--top-p <p>", "nucleus sampling mass (1 = off)", real(0, 1, { minExclusive: true }), 1)
    .option("--min-p <p>", "drop tokens below p × the top probability (0 = off)", real(0, 0.999999), 0)
    .option("--seed <s>", "random seed for sampling and for the blind drafter", integer(0, 2 ** 32 - 1), 0)
    .option("--draft-max <k>", "most tokens drafted per step (default: prompt-lookup 2, blind 2, draft 8)", integer(0, 256))
    .option("--ngram-max <n>", "prompt lookup: longest n-gram matched", integer(1, 64), 3)
    .option("--ngram-min <n>", "prompt lookup: shortest n-gram matched", integer(1, 64), 2)
    .option("--medusa <file>", "Medusa heads (GGUF) for --method medusa (needs --backend builtin); default with the default target: its heads in models/")
    .option("--tree <shape>", "tree shape for Medusa, as ranks per depth: e.g. \"0;1;2;0,0;0,1;1,0;0,0,0\" (Medusa's medusa_choices)")
    .addOption(
      new Option("--acceptance <rule>", "greedy: guesses must equal the target's argmax; sample: lossless rejection sampling; typical: Medusa's typical acceptance — LOSSY, output no longer follows the target (tree methods only). Default: greedy at temperature 0, else sample").choices(["greedy", "sample", "typical"]),
    )
    .option("--lookahead <W,N,G>", "look-ahead decoding: Jacobi window W, n-gram size N, verification set G (default 5,3,5; needs --backend builtin)")
    .option("--candidates <c>", "prompt lookup: merge the continuations of up to c matches into a tree verified in one pass (c > 1 needs --backend builtin)", integer(1, 64), 1)
    .option("--tree-nodes <n>", "tree methods: most guesses per tree (default 24, at most the engine's batch - 1)", integer(1, 1024))
    .option("--context-size <n>", "context size in tokens (default: the model's training context)", integer(16, 1 << 20))
    .option("--threads <n>", "CPU threads for llama.cpp (1 is fastest for small models on small machines)", integer(1, 1024), 1)
    .option("--stop <text>", "stop before this string (repeatable; not empty)", nonEmpty("a stop string"))
    .option("--json", "print one JSON object {text, tokens, stats} instead of streaming text")
    .action(runGenerate);
  addDemoCommand(cli);
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
    } else if (e instanceof SpecdecError) process.stderr.write(errorLine(e.message));
    else if (process.env.SPECDEC_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    else process.stderr.write(`specdec: internal error: ${escapeControls(String((e as Error)?.message ?? e).split("\n")[0]).slice(0, ERROR_LINE_LIMIT)} (set SPECDEC_DEBUG=1 for details)\n`);
  }
  // llama.cpp's worker threads would keep the process alive: exit explicitly once output is flushed.
  await exitAfterFlush(code);
}
