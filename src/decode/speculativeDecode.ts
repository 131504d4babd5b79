// The speculative decoding loop: draft a tree → one target pass over [last, ...tree] → verify
// → commit the accepted branch / roll back the rest → stream. A chain is a tree.

import { isChain, nodeDepths, NO_DRAFT, pathTokens, validateTree, type DraftTree } from "../drafters/draftTree.js";
import type { Drafter } from "../drafters/drafter.js";
import { SpecdecError } from "../errors.js";
import { SeededRng } from "../sampling/rng.js";
import { isGreedy, resolveSampling, type SamplingSettings } from "../sampling/samplingSettings.js";
import { shapeDistribution } from "../sampling/shapeDistribution.js";
import { requireCapabilities } from "../targets/loadTarget.js";
import type { Target } from "../targets/target.js";
import type { Rng, Token } from "../types.js";
import { FixedPlanner, type Planner } from "../planner/planner.js";
import { GreedyVerifier } from "../verifiers/greedy.js";
import { RejectionSampler } from "../verifiers/rejectionSampler.js";
import type { Verifier } from "../verifiers/verifier.js";
import { StatsRecorder, type GenerationStats } from "./stats.js";
import { TextStream, type TextSegment } from "./textStream.js";

export interface GenerateOptions {
  /** Text (tokenized with the model's BOS rule) or token ids used as they are. */
  prompt: string | readonly Token[];
  /** Most tokens to generate. Default 128. */
  maxTokens?: number;
  /** Sampling settings; default greedy. */
  sampling?: Partial<SamplingSettings>;
  /**
   * How much to guess each step: a FixedPlanner of draftMax and treeNodes by default, or a
   * CostModelPlanner (planner/) that picks the budget from measured pass costs and acceptance.
   */
  planner?: Planner;
  /** Without a planner: most tokens guessed ahead per step (the depth of a tree). Default 8. */
  draftMax?: number;
  /** Without a planner: most guesses per step (the nodes of a tree; at most the target's batch - 1). Default 24. */
  treeNodes?: number;
  /** Generation ends before the first occurrence of any of these strings (non-empty). */
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Random source; default a SeededRng from sampling.seed. */
  rng?: Rng;
  /** Verifier; default greedy at temperature 0, rejection sampling otherwise. */
  verifier?: Verifier;
  /** Split each step's text by origin (accepted guesses vs the target's own tokens): StepEvent.segments. */
  textOrigins?: boolean;
}

export type StopReason = "eog" | "maxTokens" | "stop" | "contextFull" | "abort";

/** One verification step's contribution to the output. */
export interface StepEvent {
  type: "step";
  /** Text safe to show now (whole UTF-8 characters, no stop string). */
  text: string;
  /** Token ids committed in this step (end-of-generation token excluded). */
  tokens: Token[];
  /** How many of them were accepted guesses (the rest: the target's own token). */
  accepted: number;
  /** Guesses checked in this step. */
  drafted: number;
  /** With textOrigins: `text` in runs, each from accepted guesses or from the target's own tokens. */
  segments?: readonly TextSegment[];
}

export interface GenerationResult {
  text: string;
  /** Generated token ids (end-of-generation token excluded). */
  tokens: Token[];
  stopReason: StopReason;
  stats: GenerationStats;
}

export const DEFAULT_MAX_TOKENS = 128;
export const DEFAULT_DRAFT_MAX = 8;
export const DEFAULT_TREE_NODES = 24;

/** Stream a generation step by step; the generator's return value is the whole result. */
export async function* speculativeStream(target: Target, drafter: Drafter, options: GenerateOptions): AsyncGenerator<StepEvent, GenerationResult, void> {
  const sampling = resolveSampling(options.sampling);
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const draftMax = options.draftMax ?? DEFAULT_DRAFT_MAX;
  const treeNodes = options.treeNodes ?? DEFAULT_TREE_NODES;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new SpecdecError(`maxTokens must be an integer >= 1, got ${maxTokens}`);
  if (!Number.isInteger(draftMax) || draftMax < 0) throw new SpecdecError(`draftMax must be an integer >= 0, got ${draftMax}`);
  if (!Number.isInteger(treeNodes) || treeNodes < 1) throw new SpecdecError(`treeNodes must be an integer >= 1, got ${treeNodes}`);
  const stops = options.stop ?? [];
  if (stops.some((s) => typeof s !== "string" || s === "")) throw new SpecdecError("stop strings must be non-empty");
  requireCapabilities(target, drafter.name, drafter.requires ?? []);
  const verifier = options.verifier ?? (isGreedy(sampling) ? new GreedyVerifier() : new RejectionSampler());
  const rng = options.rng ?? new SeededRng(sampling.seed);
  const signal = options.signal;
  const planner: Planner = options.planner ?? new FixedPlanner(draftMax, treeNodes);
  // A drafter that reads hidden states makes every pass dearer: where the planner expects no
  // speculation to pay, this generation runs without it.
  const readsHidden = drafter.requires?.includes("hiddenStates") ?? false;
  const attached = !readsHidden || (planner.attach?.(maxTokens) ?? true);
  const hidden = readsHidden && attached;

  const prompt = typeof options.prompt === "string" ? target.tokenize(options.prompt) : [...options.prompt];
  if (prompt.length === 0) throw new SpecdecError("the prompt is empty (and the model adds no BOS token)");
  if (prompt.length >= target.contextSize)
    throw new SpecdecError(`the prompt has ${prompt.length} tokens but the context holds ${target.contextSize}: nothing left to generate into`);

  const stats = new StatsRecorder();
  stats.promptTokens = prompt.length;
  const text = new TextStream(target, prompt, stops, options.textOrigins ?? false);
  const generated: Token[] = [];
  let stopReason: StopReason = "maxTokens";

  // Prefill: the cache holds every committed token but the last, which opens the next pass.
  const t0 = performance.now();
  await target.reset();
  // A drafter that reads hidden states gets the prompt's too (a feature drafter's context).
  const prefill = prompt.length > 1 ? await target.evaluate(prompt.slice(0, -1), hidden ? { read: "argmax", hidden, signal } : { outputs: "none", signal }) : undefined;
  if (attached) await drafter.begin({ prompt, sampling, rng, signal, hidden: hidden ? (prefill?.hidden ?? new Float32Array(0)) : undefined });
  planner.begin?.();
  stats.prefillMs = performance.now() - t0;
  const context: Token[] = [...prompt];

  try {
    while (true) {
      if (signal?.aborted) { stopReason = "abort"; break; }
      const room = target.contextSize - context.length; // the pass appends 1 + guesses to length - 1
      if (room <= 0) { stopReason = "contextFull"; break; }
      // 1. Draft a tree within the step's budget. Guesses never go deeper than the output still
      // wanted (the step adds one token of its own) nor past the context.
      const plan = planner.plan({ maxDepth: Math.min(maxTokens - generated.length - 1, room - 1), maxNodes: Math.min(target.maxBatch - 1, room - 1) });
      const tDraft = performance.now();
      const tree = attached && plan.maxDepth > 0 && plan.maxNodes > 0 ? await drafter.propose(context, { maxDepth: plan.maxDepth, maxNodes: plan.maxNodes }, signal) : NO_DRAFT;
      validateTree(tree, target.vocabSize, `the ${drafter.name} drafter's tree`);
      const depth = checkBudget(drafter, tree, plan.maxDepth, plan.maxNodes);
      const tVerify = performance.now();
      const draftMs = tVerify - tDraft;
      stats.draftMs += draftMs;

      // 2. One pass over [last, ...tree]: slot 0 is the last committed token, slot i + 1 node i.
      const last = context[context.length - 1];
      const parents = tree.parents.map((p) => p + 1);
      const padTo = target.reusesGraphs ? planner.padTo?.(plan, tree.tokens.length) : undefined;
      const out = await target.evaluate([last, ...tree.tokens], { parents: [-1, ...parents], read: verifier.reads, hidden, threads: plan.threads, padTo, signal });
      const p = out.probs ? out.probs.map((d) => shapeDistribution(d, sampling, d)) : [];

      // 3. Verify: the accepted branch plus one token of the target's own.
      const verdict = verifier.verify(tree, { argmax: out.argmax, p }, rng);

      // 4. Keep the last token's slot and the accepted branch in the cache; drop the rest.
      await target.keep(context.length - 1, [0, ...verdict.path.map((i) => i + 1)]);
      const committed = [...pathTokens(tree, verdict.path), verdict.token];
      if (attached) await drafter.observe({ contextLength: context.length, tree, path: verdict.path, committed, argmax: out.argmax, hidden: out.hidden });
      const passMs = performance.now() - tVerify;
      stats.verifyMs += passMs;
      stats.recordStep(tree.tokens.length, depth, verdict.path.length, plan.maxNodes);
      const passTokens = padTo !== undefined && isChain(tree) ? Math.max(padTo, 1 + tree.tokens.length) : 1 + tree.tokens.length;
      planner.observe({ plan, nodes: tree.tokens.length, path: verdict.path, draftMs, passMs, passTokens });

      // 5. Commit up to an end-of-generation token, then stream.
      const eog = committed.findIndex((t) => target.eogTokens.has(t));
      const kept = eog >= 0 ? committed.slice(0, eog) : committed;
      context.push(...committed);
      generated.push(...kept);
      stats.decidedTokens += eog >= 0 ? eog + 1 : kept.length;
      const accepted = Math.min(verdict.path.length, kept.length);
      const delta = text.push(kept, eog >= 0 || generated.length >= maxTokens, accepted);
      yield { type: "step", text: delta, tokens: kept, accepted, drafted: tree.tokens.length, segments: options.textOrigins ? text.lastSegments() : undefined };
      if (text.stopped) { stopReason = "stop"; break; }
      if (eog >= 0) { stopReason = "eog"; break; }
      if (generated.length >= maxTokens) { stopReason = "maxTokens"; break; }
    }
  } catch (e) {
    // An abort may surface as an error from inside a pass: end cleanly with what was committed.
    if (!signal?.aborted) throw e;
    stopReason = "abort";
  }

  const tail = text.push([], true);
  if (tail) yield { type: "step", text: tail, tokens: [], accepted: 0, drafted: 0, segments: options.textOrigins ? text.lastSegments() : undefined };
  stats.generatedTokens = generated.length;
  return { text: text.emittedText, tokens: generated, stopReason, stats: stats.finish() };
}

/** The depth of a proposal; a drafter that overran its budget is a bug, named as such. */
function checkBudget(drafter: Drafter, tree: DraftTree, maxDepth: number, maxNodes: number): number {
  const depth = tree.tokens.length === 0 ? 0 : Math.max(...nodeDepths(tree));
  if (depth > maxDepth || tree.tokens.length > maxNodes)
    throw new Error(`drafter '${drafter.name}' exceeded its budget (${tree.tokens.length} nodes, depth ${depth}; allowed ${maxNodes} nodes, depth ${maxDepth})`);
  return depth;
}

/** Run a whole generation and return its result. */
export async function generate(target: Target, drafter: Drafter, options: GenerateOptions): Promise<GenerationResult> {
  const it = speculativeStream(target, drafter, options);
  while (true) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
