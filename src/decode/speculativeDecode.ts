// The speculative decoding loop: draft → one target pass → verify → commit / roll back → stream.

import type { Drafter } from "../drafter.js";
import { SpecdecError } from "../errors.js";
import { SeededRng } from "../sampling/rng.js";
import { isGreedy, resolveSampling, type SamplingSettings } from "../sampling/samplingSettings.js";
import { shapeDistribution } from "../sampling/shapeDistribution.js";
import type { Target } from "../target.js";
import type { Rng, Token } from "../types.js";
import type { Verifier } from "../verifier.js";
import { GreedyVerifier } from "../verify/greedyVerifier.js";
import { RejectionSampler } from "../verify/rejectionSampler.js";
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

/** Stream a generation step by step; the generator's return value is the whole result. */
export async function* speculativeStream(target: Target, drafter: Drafter, options: GenerateOptions): AsyncGenerator<StepEvent, GenerationResult, void> {
  const sampling = resolveSampling(options.sampling);
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const draftMax = options.draftMax ?? DEFAULT_DRAFT_MAX;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new SpecdecError(`max tokens must be an integer >= 1, got ${maxTokens}`);
  if (!Number.isInteger(draftMax) || draftMax < 0) throw new SpecdecError(`draft max must be an integer >= 0, got ${draftMax}`);
  const rng = options.rng ?? new SeededRng(sampling.seed);
  const verifier = options.verifier ?? (isGreedy(sampling) ? new GreedyVerifier() : new RejectionSampler());
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

  // Prefill: the cache holds every committed token but the last, which opens the next pass.
  let t0 = performance.now();
  await target.reset();
  if (prompt.length > 1) await target.evaluate(prompt.slice(0, -1), { outputs: "none", signal });
  await drafter.begin({ prompt, sampling, rng, signal });
  stats.prefillMs = performance.now() - t0;
  const context: Token[] = [...prompt];

  try {
  while (true) {
    if (signal?.aborted) { stopReason = "abort"; break; }
    const remaining = maxTokens - generated.length;
    const room = target.contextSize - context.length; // the pass appends 1 + k tokens to length - 1
    if (room <= 0) { stopReason = "contextFull"; break; }

    // 1. Draft: guess up to k tokens; the step itself yields one more, so never guess past the budget.
    t0 = performance.now();
    const k = Math.min(draftMax, remaining - 1, room - 1);
    const draft = k > 0 ? await drafter.propose(context, k, signal) : { tokens: [] as Token[] };
    const guesses = draft.tokens.slice(0, Math.max(0, k));
    const t1 = performance.now();
    stats.draftMs += t1 - t0;

    // 2. One target pass over [last committed token, ...guesses]: k + 1 distributions.
    const raw = await target.evaluate([context[context.length - 1], ...guesses], { outputs: "all", signal });
    const p = raw.map((d) => shapeDistribution(d, sampling, d));

    // 3. Verify: accepted prefix plus one token of the target's own.
    const verdict = verifier.verify({ tokens: guesses, q: draft.q }, p, rng);

    // 4. Roll back: keep the context and the accepted guesses in the cache, drop the rest.
    await target.truncate(context.length + verdict.accepted);
    const committed = [...guesses.slice(0, verdict.accepted), verdict.token];
    await drafter.observe({ contextLength: context.length, accepted: verdict.accepted, committed });
    stats.verifyMs += performance.now() - t1;
    stats.recordStep(guesses.length, verdict.accepted);

    // 5. Commit up to an end-of-generation token, then stream.
    let out = committed;
    const eog = committed.findIndex((t) => target.eogTokens.has(t));
    if (eog >= 0) out = committed.slice(0, eog);
    context.push(...committed);
    generated.push(...out);
    const delta = text.push(out, eog >= 0 || generated.length >= maxTokens);
    yield { type: "step", text: delta, tokens: out, drafted: guesses.length, accepted: verdict.accepted };
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

/** Run a whole generation and return its result. */
export async function generate(target: Target, drafter: Drafter, options: GenerateOptions): Promise<GenerationResult> {
  const it = speculativeStream(target, drafter, options);
  while (true) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
