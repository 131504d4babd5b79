import { loadTarget, type Backend } from "../backends/loadTarget.js";
import { speculativeStream, type GenerationResult } from "../decode/speculativeDecode.js";
import type { GenerationStats } from "../decode/stats.js";
import { SpecdecError } from "../errors.js";
import { parseTreeChoices } from "../draftTree.js";
import { parseLookahead } from "../drafters/lookahead.js";
import type { Verifier } from "../verifier.js";
import { GreedyVerifier } from "../verify/greedyVerifier.js";
import { RejectionSampler } from "../verify/rejectionSampler.js";
import { GreedyTreeVerifier, TreeRejectionSampler, type TreeVerifier } from "../verify/treeVerifier.js";
import { TypicalAcceptanceVerifier } from "../verify/typicalAcceptance.js";
import { createDrafter, draftsTrees, METHOD_DRAFT_MAX, parseMethod, type Method } from "../methods.js";
import { defaultModels, requireDefaultModel } from "../defaultModels.js";
import { readBoundedFile } from "./inputFile.js";

/** Largest prompt file read: far more text than any context holds. */
export const MAX_PROMPT_FILE_BYTES = 16 * 2 ** 20;

export interface GenerateCliOptions {
  /** Target model; default the default family's target (src/defaultModels.ts). */
  model?: string;
  /** Default: llama.cpp, or builtin for tree methods (the only backend with tree attention). */
  backend?: Backend;
  draftModel?: string;
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
  ngramMax: number;
  ngramMin: number;
  candidates: number;
  treeNodes?: number;
  medusa?: string;
  lookahead?: string;
  tree?: string;
  acceptance?: "greedy" | "sample" | "typical";
  contextSize?: number;
  threads: number;
  stop?: string[];
  json?: boolean;
}

export async function runGenerate(options: GenerateCliOptions): Promise<void> {
  const method = parseMethod(options.method ?? (options.draftModel ? "draft" : "prompt-lookup"));
  const trees = draftsTrees({ method, candidates: options.candidates });
  const o = { ...options, backend: options.backend ?? (trees ? "builtin" : "llama.cpp") };
  if (o.draftModel && method !== "draft") throw new SpecdecError(`--draft-model is only used by --method draft (got --method ${method})`);
  if (o.ngramMin > o.ngramMax) throw new SpecdecError(`--ngram-min ${o.ngramMin} is larger than --ngram-max ${o.ngramMax}`);
  if (trees && o.backend !== "builtin")
    throw new SpecdecError(`${method === "prompt-lookup" ? `--candidates ${o.candidates}` : `--method ${method}`} drafts a tree of guesses, which needs tree attention: use --backend builtin (llama.cpp through node-llama-cpp has no custom attention masks)`);
  if (o.medusa && method !== "medusa") throw new SpecdecError(`--medusa is only used by --method medusa (got --method ${method})`);
  if (o.acceptance === "typical" && !trees) throw new SpecdecError("--acceptance typical applies to tree methods (medusa, prompt-lookup with --candidates > 1)");
  const treeChoices = o.tree === undefined ? undefined : parseTreeChoices(o.tree);
  if (o.lookahead !== undefined && method !== "lookahead") throw new SpecdecError(`--lookahead is only used by --method lookahead (got --method ${method})`);
  const lookahead = o.lookahead === undefined ? undefined : parseLookahead(o.lookahead);
  const prompt = readPrompt(o);
  const files = modelFiles(o, method);

  const target = await loadTarget(o.backend, files.model, { contextSize: o.contextSize, threads: o.threads });
  const drafter = await createDrafter({
    method,
    targetPath: files.model,
    draftModelPath: files.draftModel,
    draftBackend: o.backend,
    draftOptions: { contextSize: o.contextSize, threads: o.threads },
    promptLookup: { maxNgram: o.ngramMax, minNgram: o.ngramMin },
    candidates: o.candidates,
    medusaPath: files.medusa,
    lookahead,
    target,
    treeChoices,
  });

  // Ctrl-C ends the generation cleanly: what was produced is printed with its statistics.
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);
  try {
    const stream = speculativeStream(target, drafter, {
      prompt,
      maxTokens: o.maxTokens,
      draftMax: o.draftMax ?? METHOD_DRAFT_MAX[method],
      treeNodes: o.treeNodes,
      ...verifiers(o.acceptance),
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
      process.stdout.write(JSON.stringify({ method, text: result.text, tokens: result.tokens, stopReason: result.stopReason, stats: result.stats }) + "\n");
    } else {
      process.stdout.write("\n");
      process.stderr.write(summaryLine(method, result.stats, result.stopReason) + "\n");
    }
  } finally {
    process.off("SIGINT", onSigint);
    await drafter.dispose?.();
    await target.dispose();
  }
}

/**
 * The model files: the user's, or without --model the default family — its target, and its
 * draft and heads for the methods that need them. A user's own target gets no default helpers:
 * the family's would not fit it, so those methods keep asking for --draft-model / --medusa.
 */
function modelFiles(o: GenerateCliOptions, method: Method): { model: string; draftModel?: string; medusa?: string } {
  if (o.model !== undefined) return { model: o.model, draftModel: o.draftModel, medusa: o.medusa };
  const d = defaultModels();
  return {
    model: requireDefaultModel(d.target),
    draftModel: o.draftModel ?? (method === "draft" ? requireDefaultModel(d.draft, "pass --draft-model FILE") : undefined),
    medusa: o.medusa ?? (method === "medusa" ? requireDefaultModel(d.medusa, "pass --medusa FILE") : undefined),
  };
}

/** The verifiers an --acceptance rule asks for; none = the default for the temperature. */
function verifiers(rule: GenerateCliOptions["acceptance"]): { verifier?: Verifier; treeVerifier?: TreeVerifier } {
  switch (rule) {
    case "greedy":
      return { verifier: new GreedyVerifier(), treeVerifier: new GreedyTreeVerifier() };
    case "sample":
      return { verifier: new RejectionSampler(), treeVerifier: new TreeRejectionSampler() };
    case "typical":
      return { treeVerifier: new TypicalAcceptanceVerifier() };
    default:
      return {};
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
