// `specdec generate`: one prompt, one method, text streamed to stdout and a summary to stderr.
import { Command, Option } from "commander";
import { speculativeStream, DEFAULT_MAX_TOKENS, type GenerationResult } from "../decode/speculativeDecode.js";
import type { GenerationStats } from "../decode/stats.js";
import type { TextSegment } from "../decode/textStream.js";
import { SpecdecError } from "../errors.js";
import { methodNamed, methods } from "../methods.js";
import { methodNeeds, openDrafter, openPlanner, openTarget } from "../session.js";
import { ACCEPTANCE_RULES, verifierFor, type AcceptanceRule } from "../verifiers/acceptance.js";
import { addTargetOptions, targetSpecFrom, type TargetCliOptions } from "./targetOptions.js";
import { addMethodOptions, methodOptionsFrom } from "./methodOptions.js";
import { readBoundedFile } from "../inputFile.js";
import { integer, nonEmpty, real } from "./options.js";

/** Largest prompt file read: far more text than any context holds. */
export const MAX_PROMPT_FILE_BYTES = 16 * 2 ** 20;

export interface GenerateCliOptions extends TargetCliOptions {
  method?: string;
  prompt?: string;
  promptFile?: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  draftMax?: number;
  treeNodes?: number;
  acceptance?: AcceptanceRule;
  stop?: string[];
  json?: boolean;
  planner: "auto" | "fixed";
  refreshCost?: boolean;
  showGuesses?: boolean;
  /** Method options (flags of the registered methods), by option name. */
  [methodOption: string]: unknown;
}

export function addGenerateCommand(cli: Command): void {
  const cmd = cli
    .command("generate")
    .description("generate text from a prompt, drafting guesses and verifying them losslessly")
    .addOption(new Option("--method <name>", "how guesses are made; default: draft with --draft-model, else prompt-lookup").choices(methods().map((m) => m.name)))
    .option("--prompt <text>", "the prompt")
    .option("--prompt-file <file>", "read the prompt from a file")
    .option("--max-tokens <n>", "most tokens to generate", integer(1, 1_000_000), DEFAULT_MAX_TOKENS)
    .option("--temperature <t>", "0 = greedy (identical tokens to plain decoding); > 0 samples (identical distribution)", real(0, 100), 0)
    .option("--top-k <k>", "keep the k most probable tokens (0 = off)", integer(0), 0)
    .option("--top-p <p>", "nucleus sampling mass (1 = off)", real(0, 1, { minExclusive: true }), 1)
    .option("--min-p <p>", "drop tokens below p × the top probability (0 = off)", real(0, 0.999999), 0)
    .option("--seed <s>", "random seed for sampling and for the blind drafter", integer(0, 2 ** 32 - 1), 0)
    .option("--draft-max <k>", `most tokens guessed ahead per step (default per method: ${methods().filter((m) => m.defaultDraftMax > 0).map((m) => `${m.name} ${m.defaultDraftMax}`).join(", ")})`, integer(0, 256))
    .option("--tree-nodes <n>", "most guesses per step for methods that draft trees (default 24, at most the backend's batch - 1)", integer(1, 1024))
    .addOption(new Option("--planner <how>", "auto: a cost model picks each step's budget (including not speculating) from this target's measured pass costs and the running acceptance; fixed: the method's default draft length every step. A given --draft-max, --tree-nodes, --tree or --lookahead is fixed").choices(["auto", "fixed"]).default("auto"))
    .option("--refresh-cost", "measure the target's pass costs again (they are cached per model file, backend and machine)")
    .addOption(
      new Option("--acceptance <rule>", "greedy: guesses must equal the target's argmax; sample: lossless rejection sampling; typical: Medusa's typical acceptance — LOSSY, output no longer follows the target. Default: greedy at temperature 0, else sample").choices(ACCEPTANCE_RULES),
    )
    .option("--stop <text>", "stop before this string (repeatable; not empty)", nonEmpty("a stop string"))
    .option("--json", "print one JSON object {text, tokens, stats} instead of streaming text")
    .option("--show-guesses", "colour the streamed text by how it came: accepted guesses vs the target's own tokens (when stdout is a terminal)");
  addMethodOptions(addTargetOptions(cmd)).action(runGenerate);
}

export async function runGenerate(o: GenerateCliOptions): Promise<void> {
  const method = methodNamed(o.method ?? (o.draftModel !== undefined ? "draft" : "prompt-lookup")).name;
  const methodOptions = methodOptionsFrom(method, o);
  const prompt = readPrompt(o);
  const verifier = verifierFor(o.acceptance);

  const opened = await openTarget(targetSpecFrom(o), { name: method, needs: methodNeeds(method, methodOptions) });
  const { target } = opened;
  let drafter;
  try {
    drafter = await openDrafter(opened, method, methodOptions);
  } catch (e) {
    await target.dispose();
    throw e;
  }

  const fixedShape = methodOptions.tree !== undefined || methodOptions.lookahead !== undefined;
  let planner;
  try {
    planner = await openPlanner(opened, method, {
      draftMax: o.draftMax,
      treeNodes: o.treeNodes,
      fixed: o.planner === "fixed" || fixedShape,
      read: verifier?.reads ?? (o.temperature === 0 ? "argmax" : "probabilities"),
      refresh: o.refreshCost,
      onMeasure: o.json || !process.stderr.isTTY ? undefined : (done, total) => process.stderr.write(`\r\x1b[K[specdec] measuring this model's pass costs (first use, cached): ${done}/${total}${done === total ? "\n" : ""}`),
    });
  } catch (e) {
    await drafter.dispose?.();
    await target.dispose();
    throw e;
  }

  const showGuesses = (o.showGuesses ?? false) && !o.json && process.stdout.isTTY === true;

  // Ctrl-C ends the generation cleanly: what was produced is printed with its statistics.
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);
  try {
    const stream = speculativeStream(target, drafter, {
      prompt,
      maxTokens: o.maxTokens,
      planner,
      verifier,
      sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, seed: o.seed },
      stop: o.stop,
      signal: abort.signal,
      textOrigins: showGuesses,
    });
    let result: GenerationResult;
    while (true) {
      const r = await stream.next();
      if (r.done) {
        result = r.value;
        break;
      }
      if (!o.json && r.value.text) process.stdout.write(showGuesses ? colour(r.value.segments ?? []) : r.value.text);
    }
    if (o.json) {
      process.stdout.write(JSON.stringify({ method, planner: planner.name, ...(verifier?.lossy ? { lossy: verifier.name } : {}), text: result.text, tokens: result.tokens, stopReason: result.stopReason, stats: result.stats }) + "\n");
    } else {
      process.stdout.write("\n");
      process.stderr.write(summaryLine(method, result.stats, result.stopReason) + `, budget ${planner.name} (mean ${result.stats.meanBudget.toFixed(2)} guesses, speculated in ${result.stats.speculatedSteps} of ${result.stats.targetCalls} passes)` + (verifier?.lossy ? ` — LOSSY verification (${verifier.name}): the output does not follow the target's distribution` : "") + "\n");
    }
  } finally {
    process.off("SIGINT", onSigint);
    await drafter.dispose?.();
    await target.dispose();
  }
}

function readPrompt(o: GenerateCliOptions): string {
  if (o.prompt !== undefined && o.promptFile !== undefined) throw new SpecdecError("give either --prompt or --prompt-file, not both");
  if (o.prompt !== undefined) return o.prompt;
  if (o.promptFile === undefined) throw new SpecdecError("no prompt: give --prompt TEXT or --prompt-file FILE");
  return readBoundedFile(o.promptFile, MAX_PROMPT_FILE_BYTES, "prompt file").toString("utf8");
}

export function summaryLine(method: string, s: GenerationStats, stopReason: string): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const byPos = s.acceptanceByPosition.slice(0, 8).map((p) => pct(p.rate)).join(" ");
  const draftShare = s.decodeMs > 0 ? s.draftMs / s.decodeMs : 0;
  return (
    `[specdec] method=${method} tokens=${s.generatedTokens} target-calls=${s.targetCalls} tau=${s.tau.toFixed(3)} ` +
    `drafted=${s.draftedTokens} accepted=${s.acceptedTokens} (${pct(s.acceptanceRate)}; by position ${byPos || "-"}) ` +
    `${s.tokensPerSecond.toFixed(1)} tok/s, time draft ${pct(draftShare)} / verify ${pct(1 - draftShare)}, prefill ${s.prefillMs.toFixed(1)} ms, stop=${stopReason}`
  );
}

/** Accepted guesses in green, the target's own tokens as they are (ANSI colours). */
export function colour(segments: readonly TextSegment[]): string {
  return segments.map((s) => (s.guessed ? `\x1b[32m${s.text}\x1b[39m` : s.text)).join("");
}
