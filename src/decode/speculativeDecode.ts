// The speculative decoding loop: draft → one target pass → verify → commit / roll back → stream.

import { isTreeDrafter, type AnyDrafter, type Drafter, type TreeDrafter } from "../drafter.js";
import { nodeDepths, pathTokens, validateTree } from "../draftTree.js";
import { SpecdecError } from "../errors.js";
import { SeededRng } from "../sampling/rng.js";
import { isGreedy, resolveSampling, type SamplingSettings } from "../sampling/samplingSettings.js";
import { argmax, shapeDistribution } from "../sampling/shapeDistribution.js";
import { isTreeTarget, type Target } from "../target.js";
import type { Rng, Token } from "../types.js";
import type { Verifier } from "../verifier.js";
import { GreedyVerifier } from "../verify/greedyVerifier.js";
import { RejectionSampler } from "../verify/rejectionSampler.js";
import { GreedyTreeVerifier, TreeRejectionSampler, type TreeVerifier } from "../verify/treeVerifier.js";
import { StatsRecorder, type GenerationStats } from "./stats.js";
import { TextStream } from "./textStream.js";

export interface GenerateOptions {
  /** Text (tokenized with the model's BOS rule) or token ids used as they are. */
  prompt: string | readonly Token[];
  /** Most tokens to generate. Default 128. */
  maxTokens?: number;
  /** Sampling settings; default greedy. */
  sampling?: Partial<SamplingSettings>;
  /** Most tokens drafted per step. Default 8. */
  draftMax?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Random source; default a SeededRng from sampling.seed. */
  rng?: Rng;
  /** Verifier; default greedy at temperature 0, rejection sampling otherwise. */
  verifier?: Verifier;
  /** Tree drafters: most nodes per tree (capped by the engine's batch). Default 24. */
  treeNodes?: number;
  /** Tree drafters: the verifier; default greedy at temperature 0, multi-draft rejection sampling otherwise. */
  treeVerifier?: TreeVerifier;
}

export type StopReason = "eog" | "maxTokens" | "stop" | "contextFull" | "abort";

/** One verification step's contribution to the output. */
export interface StepEvent {
  type: "step";
  /** Text safe to show now (whole UTF-8 characters, no stop string). */
  text: string;
  /** Token ids committed in this step. */
  tokens: Token[];
  drafted: number;
  accepted: number;
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
export async function* speculativeStream(target: Target, drafter: AnyDrafter, options: GenerateOptions): AsyncGenerator<StepEvent, GenerationResult, void> {
  const sampling = resolveSampling(options.sampling);
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const draftMax = options.draftMax ?? DEFAULT_DRAFT_MAX;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new SpecdecError(`max tokens must be an integer >= 1, got ${maxTokens}`);
  if (!Number.isInteger(draftMax) || draftMax < 0) throw new SpecdecError(`draft max must be an integer >= 0, got ${draftMax}`);
  const rng = options.rng ?? new SeededRng(sampling.seed);
  const signal = options.signal;

  const prompt = typeof options.prompt === "string" ? target.tokenize(options.prompt) : [...options.prompt];
  if (prompt.length === 0) throw new SpecdecError("the prompt is empty (and the model adds no BOS token)");
  if (prompt.length >= target.contextSize)
    throw new SpecdecError(`the prompt has ${prompt.length} tokens but the context holds ${target.contextSize}: nothing left to generate into`);

  const stats = new StatsRecorder();
  stats.promptTokens = prompt.length;
  const text = new TextStream(target, prompt, options.stop ?? []);
  const generated: Token[] = [];
  let stopReason: StopReason = "maxTokens";
  const step = isTreeDrafter(drafter)
    ? treeStep(target, drafter, sampling, rng, options)
    : chainStep(target, drafter, sampling, rng, options.verifier ?? (isGreedy(sampling) ? new GreedyVerifier() : new RejectionSampler()));

  // Prefill: the cache holds every committed token but the last, which opens the next pass.
  const t0 = performance.now();
  await target.reset();
  if (prompt.length > 1) await target.evaluate(prompt.slice(0, -1), { outputs: "none", signal });
  await drafter.begin({ prompt, sampling, rng, signal });
  stats.prefillMs = performance.now() - t0;
  const context: Token[] = [...prompt];

  try {
    while (true) {
      if (signal?.aborted) { stopReason = "abort"; break; }
      const remaining = maxTokens - generated.length;
      const room = target.contextSize - context.length; // the pass appends 1 + guesses to length - 1
      if (room <= 0) { stopReason = "contextFull"; break; }

      // Draft, one target pass, verify, roll back: the step yields the accepted guesses plus one
      // token of the target's own, so guesses never go deeper than the budget allows.
      const s = await step(context, Math.min(draftMax, remaining - 1, room - 1), signal, stats);
      await drafter.observe({ contextLength: context.length, accepted: s.accepted, committed: s.committed, hidden: s.hidden, predictions: s.predictions });
      stats.verifyMs += performance.now() - s.verifyStart;
      stats.recordStep(s.drafted, s.depth, s.accepted);

      // Commit up to an end-of-generation token, then stream.
      let out = s.committed;
      const eog = s.committed.findIndex((t) => target.eogTokens.has(t));
      if (eog >= 0) out = s.committed.slice(0, eog);
      context.push(...s.committed);
      generated.push(...out);
      stats.decidedTokens += eog >= 0 ? eog + 1 : out.length;
      const delta = text.push(out, eog >= 0 || generated.length >= maxTokens);
      yield { type: "step", text: delta, tokens: out, drafted: s.drafted, accepted: s.accepted };
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
  if (tail) yield { type: "step", text: tail, tokens: [], drafted: 0, accepted: 0 };
  stats.generatedTokens = generated.length;
  return { text: text.emittedText, tokens: generated, stopReason, stats: stats.finish() };
}

/** What one step committed. */
interface StepResult {
  committed: Token[];
  accepted: number;
  drafted: number; // guesses checked (tree nodes)
  depth: number; // deepest guess (= drafted for a chain)
  verifyStart: number; // when drafting ended
  hidden?: Float32Array; // (hiddenSize) the target's state at the last verified position, when asked for
  predictions?: Token[]; // the target's argmax after each tree node, when asked for
}

type Step = (context: readonly Token[], maxDepth: number, signal: AbortSignal | undefined, stats: StatsRecorder) => Promise<StepResult>;

/** A chain step: k guesses → one pass over [last, ...guesses] → accepted prefix + one token. */
function chainStep(target: Target, drafter: Drafter, sampling: SamplingSettings, rng: Rng, verifier: Verifier): Step {
  // Greedy verification only compares argmaxes: let the target skip the full distributions.
  const argmaxOnly = isGreedy(sampling) && verifier instanceof GreedyVerifier;
  return async (context, k, signal, stats) => {
    // 1. Draft up to k tokens.
    const t0 = performance.now();
    const draft = k > 0 ? await drafter.propose(context, k, signal) : { tokens: [] as Token[] };
    const guesses = draft.tokens.slice(0, Math.max(0, k));
    const verifyStart = performance.now();
    stats.draftMs += verifyStart - t0;

    // 2. One target pass: k + 1 distributions.
    const input = [context[context.length - 1]];
    for (const g of guesses) input.push(g);
    const raw = await target.evaluate(input, { outputs: "all", signal, argmaxOnly });
    // With argmaxOnly the greedy verifier reads only argmaxes, which shaping at T = 0 keeps: skip it.
    const p = argmaxOnly ? raw : raw.map((d) => shapeDistribution(d, sampling, d));

    // 3. Verify: accepted prefix plus one token of the target's own.
    const verdict = verifier.verify({ tokens: guesses, q: draft.q }, p, rng);

    // 4. Roll back: keep the context and the accepted guesses in the cache, drop the rest.
    await target.truncate(context.length + verdict.accepted);
    return { committed: [...guesses.slice(0, verdict.accepted), verdict.token], accepted: verdict.accepted, drafted: guesses.length, depth: guesses.length, verifyStart };
  };
}

/** A tree step: a tree of guesses → one tree-masked pass → the accepted branch + one token. */
function treeStep(target: Target, drafter: TreeDrafter, sampling: SamplingSettings, rng: Rng, options: GenerateOptions): Step {
  if (!isTreeTarget(target)) throw new SpecdecError(`method '${drafter.name}' verifies trees of guesses: it needs a backend with tree attention (--backend builtin)`);
  const verifier = options.treeVerifier ?? (isGreedy(sampling) ? new GreedyTreeVerifier() : new TreeRejectionSampler());
  const maxNodes = Math.min(options.treeNodes ?? DEFAULT_TREE_NODES, target.maxBatch - 1);
  return async (context, maxDepth, signal, stats) => {
    // 1. Draft a tree (nothing deeper than the budget, no more nodes than one pass takes).
    const t0 = performance.now();
    const room = target.contextSize - context.length;
    const tree = maxDepth > 0 ? await drafter.proposeTree(context, { maxNodes: Math.min(maxNodes, room - 1), maxDepth }, signal) : { tokens: [] as Token[], parents: [] as number[] };
    validateTree(tree, target.vocabSize);
    const depths = nodeDepths(tree);
    if (depths.some((d) => d > maxDepth) || tree.tokens.length > maxNodes) throw new Error(`drafter '${drafter.name}' exceeded its tree budget`);
    const verifyStart = performance.now();
    stats.draftMs += verifyStart - t0;

    // 2. One pass over [last, ...tree]: the last committed token is the tree's root slot.
    const parents = [-1, ...tree.parents.map((p) => (p < 0 ? 0 : p + 1))];
    const { dists, hidden } = await target.evaluateTree([context[context.length - 1], ...tree.tokens], parents, { signal, hidden: drafter.needsHidden });
    const p = dists.map((d) => shapeDistribution(d, sampling, d));

    // 3. Verify: the accepted branch plus one token of the target's own.
    const verdict = verifier.verify(tree, p[0], p.slice(1), rng);

    // 4. Keep the root slot and the accepted branch in the cache; drop the other branches.
    await target.keep(context.length - 1, [0, ...verdict.path.map((i) => i + 1)]);
    const committed = [...pathTokens(tree, verdict.path), verdict.token];
    // The state at the last verified slot: the deepest accepted node, or the root slot.
    const slot = verdict.path.length > 0 ? verdict.path[verdict.path.length - 1] + 1 : 0;
    const h = hidden?.slice(slot * target.hiddenSize, (slot + 1) * target.hiddenSize);
    const predictions = drafter.needsPredictions ? p.slice(1).map((d) => argmax(d)) : undefined;
    return { committed, accepted: verdict.path.length, drafted: tree.tokens.length, depth: Math.max(0, ...depths), verifyStart, hidden: h, predictions };
  };
}

/** Run a whole generation and return its result. */
export async function generate(target: Target, drafter: AnyDrafter, options: GenerateOptions): Promise<GenerationResult> {
  const it = speculativeStream(target, drafter, options);
  while (true) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
