// `specdec generate`: one prompt, one method, text streamed to stdout and a summary to stderr.
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { speculativeStream, DEFAULT_MAX_TOKENS, type GenerationResult } from "../decode/speculativeDecode.js";
import type { GenerationStats } from "../decode/stats.js";
import { SpecdecError } from "../errors.js";
import { methodNamed, methods } from "../methods.js";
import { methodNeeds, openDrafter, openTarget } from "../session.js";
import { BACKENDS, type Backend } from "../targets/loadTarget.js";
import { GPU_CHOICES, type GpuChoice } from "../targets/llamaCpp/packages.js";
import { GreedyVerifier } from "../verifiers/greedy.js";
import { RejectionSampler } from "../verifiers/rejectionSampler.js";
import { TypicalAcceptanceVerifier } from "../verifiers/typicalAcceptance.js";
import type { Verifier } from "../verifiers/verifier.js";
import { addMethodOptions, methodOptionsFrom } from "./methodOptions.js";
import { collect, integer, real } from "./options.js";

export interface GenerateCliOptions {
  model?: string;
  backend?: Backend;
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
  acceptance?: "greedy" | "sample" | "typical";
  contextSize?: number;
  threads: number;
  batchThreads?: number;
  gpu: GpuChoice;
  gpuLayers?: number;
  stop?: string[];
  json?: boolean;
  /** Method options (flags of the registered methods), by option name. */
  [methodOption: string]: unknown;
}

export function addGenerateCommand(cli: Command): void {
  const cmd = cli
    .command("generate")
    .description("generate text from a prompt, drafting guesses and verifying them losslessly")
    .option("--model <file>", "target model (GGUF); default: the stories model shipped in models/ (or in $SPECDEC_MODELS)")
    .addOption(new Option("--backend <name>", "inference backend: llama.cpp or builtin (specdec's own engine); default llama.cpp, or builtin where the method needs what only it has").choices(BACKENDS))
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
    .addOption(
      new Option("--acceptance <rule>", "greedy: guesses must equal the target's argmax; sample: lossless rejection sampling; typical: Medusa's typical acceptance — LOSSY, output no longer follows the target. Default: greedy at temperature 0, else sample").choices(["greedy", "sample", "typical"]),
    )
    .option("--context-size <n>", "context size in tokens (default: the model's training context)", integer(16, 1 << 20))
    .option("--threads <n>", "CPU threads for llama.cpp's one-token passes (1 is fastest for small models on small machines)", integer(1, 512), 1)
    .option("--batch-threads <n>", "CPU threads for llama.cpp's passes of several tokens (default: --threads)", integer(1, 512))
    .addOption(new Option("--gpu <kind>", "llama.cpp compute backend: auto (a GPU whose driver and package are installed, else CPU), cpu, cuda, vulkan").choices(GPU_CHOICES).default("auto"))
    .option("--gpu-layers <n>", "layers llama.cpp offloads to the GPU (-1 = all; default all with a GPU)", integer(-1, 100_000))
    .option("--stop <text>", "stop before this string (repeatable)", collect)
    .option("--json", "print one JSON object {text, tokens, stats} instead of streaming text");
  addMethodOptions(cmd).action(runGenerate);
}

export async function runGenerate(o: GenerateCliOptions): Promise<void> {
  const method = methodNamed(o.method ?? (o.draftModel !== undefined ? "draft" : "prompt-lookup")).name;
  const methodOptions = methodOptionsFrom(method, o);
  if (o.stop?.some((s) => s === "")) throw new SpecdecError("--stop takes a non-empty string");
  const prompt = readPrompt(o);
  const verifier = verifierFor(o.acceptance);

  const opened = await openTarget({ model: o.model, backend: o.backend, contextSize: o.contextSize, threads: o.threads, batchThreads: o.batchThreads, gpu: o.gpu, gpuLayers: o.gpuLayers }, { name: method, needs: methodNeeds(method, methodOptions) });
  const { target } = opened;
  let drafter;
  try {
    drafter = await openDrafter(opened, method, methodOptions);
  } catch (e) {
    await target.dispose();
    throw e;
  }

  // Ctrl-C ends the generation cleanly: what was produced is printed with its statistics.
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);
  try {
    const stream = speculativeStream(target, drafter, {
      prompt,
      maxTokens: o.maxTokens,
      draftMax: o.draftMax ?? methodNamed(method).defaultDraftMax,
      treeNodes: o.treeNodes,
      verifier,
      sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, seed: o.seed },
      stop: o.stop,
      signal: abort.signal,
    });
    let result: GenerationResult;
    while (true) {
      const r = await stream.next();
      if (r.done) {
        result = r.value;
        break;
      }
      if (!o.json && r.value.text) process.stdout.write(r.value.text);
    }
    if (o.json) {
      process.stdout.write(JSON.stringify({ method, ...(verifier?.lossy ? { lossy: verifier.name } : {}), text: result.text, tokens: result.tokens, stopReason: result.stopReason, stats: result.stats }) + "\n");
    } else {
      process.stdout.write("\n");
      process.stderr.write(summaryLine(method, result.stats, result.stopReason) + (verifier?.lossy ? ` — LOSSY verification (${verifier.name}): the output does not follow the target's distribution` : "") + "\n");
    }
  } finally {
    process.off("SIGINT", onSigint);
    await drafter.dispose?.();
    await target.dispose();
  }
}

/** The verifier an --acceptance rule asks for; none = the default for the temperature. */
function verifierFor(rule: GenerateCliOptions["acceptance"]): Verifier | undefined {
  switch (rule) {
    case "greedy":
      return new GreedyVerifier();
    case "sample":
      return new RejectionSampler();
    case "typical":
      return new TypicalAcceptanceVerifier();
    default:
      return undefined;
  }
}

function readPrompt(o: GenerateCliOptions): string {
  if (o.prompt !== undefined && o.promptFile !== undefined) throw new SpecdecError("give either --prompt or --prompt-file, not both");
  if (o.prompt !== undefined) return o.prompt;
  if (o.promptFile === undefined) throw new SpecdecError("no prompt: give --prompt TEXT or --prompt-file FILE");
  try {
    return readFileSync(o.promptFile, "utf8");
  } catch (e) {
    throw new SpecdecError(`cannot read prompt file ${o.promptFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
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
