// A peer in the benchmarks: llama.cpp through node-llama-cpp's public API (pinned 3.21.1), one
// context with one sequence, whose KV cache is the Target's cache. A chain target: that API cannot
// put one token in several sequences (no tree attention) and returns no hidden states.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token as LlamaToken } from "node-llama-cpp";
import { SpecdecError } from "../src/errors.js";
import { inspectModelFile, type ModelFileInfo } from "../src/gguf/modelInfo.js";
import type { Distribution, Token } from "../src/types.js";
import { isPrefix, type PassRequest, type PassResult, type Target, type TargetCapabilities, type Vocabulary } from "../src/targets/target.js";

export interface NodeLlamaCppOptions {
  /** Context size in tokens. Default: the model's training context. */
  contextSize?: number;
  /**
   * CPU threads for evaluation. Default 1: on the 2-core machines here node-llama-cpp's
   * default (all cores) was two orders of magnitude slower on a tiny model (docs/measurements.md).
   */
  threads?: number;
}

let llamaPromise: Promise<Llama> | undefined;
function loadLlama(): Promise<Llama> {
  // Prebuilt CPU binaries only: never try to download or compile at run time.
  llamaPromise ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, logger: () => {} });
  return llamaPromise;
}

export class NodeLlamaCppTarget implements Target {
  readonly backend = "node-llama-cpp";
  readonly capabilities: TargetCapabilities = { treeAttention: false, hiddenStates: false };
  readonly vocabSize: number;
  readonly vocab: Vocabulary;
  readonly contextSize: number;
  readonly maxBatch: number;
  readonly hiddenSize = 0;
  readonly eogTokens: ReadonlySet<Token>;

  private constructor(
    readonly file: ModelFileInfo,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
  ) {
    this.vocab = file.vocab;
    this.vocabSize = file.vocab.tokens.length;
    this.contextSize = context.contextSize;
    this.maxBatch = Math.min(this.contextSize, 512);
    const eog = new Set<Token>();
    for (let t = 0; t < this.vocabSize; t++) if (model.isEogToken(t as LlamaToken)) eog.add(t as Token);
    this.eogTokens = eog;
  }

  static async load(path: string, options: NodeLlamaCppOptions = {}): Promise<NodeLlamaCppTarget> {
    const info = inspectModelFile(path);
    const threads = options.threads ?? 1;
    const llama = await loadLlama();
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    } catch (e) {
      throw new SpecdecError(`llama.cpp could not load ${path}: ${firstLine(e)}`);
    }
    const contextSize = options.contextSize ?? info.contextLength ?? model.trainContextSize;
    let context: LlamaContext;
    try {
      context = await model.createContext({ contextSize, batchSize: Math.min(contextSize, 512), sequences: 1, threads });
    } catch (e) {
      await model.dispose();
      throw new SpecdecError(`llama.cpp could not create a ${contextSize}-token context for ${path}: ${firstLine(e)}`);
    }
    return new NodeLlamaCppTarget(info, model, context, context.getSequence());
  }

  get length(): number {
    return this.sequence.nextTokenIndex;
  }

  tokenize(text: string, addBos?: boolean, parseSpecial = false): Token[] {
    const ids = this.model.tokenize(text, parseSpecial) as number[];
    const bos = this.model.tokens.bos;
    if ((addBos ?? this.model.tokens.shouldPrependBosToken) && bos !== null) ids.unshift(bos);
    return ids as Token[];
  }

  detokenize(tokens: readonly Token[], previous?: readonly Token[]): string {
    return this.model.detokenize(tokens as unknown as LlamaToken[], false, previous as unknown as LlamaToken[] | undefined);
  }

  async evaluate(tokens: readonly Token[], request: PassRequest = {}): Promise<PassResult> {
    const outputs = request.outputs ?? "all";
    request.signal?.throwIfAborted();
    if (request.parents && !request.parents.every((p, i) => p === i - 1)) throw new SpecdecError(`the ${this.backend} backend has no tree attention: it verifies chains only`);
    if (request.hidden) throw new SpecdecError(`the ${this.backend} backend returns no hidden states`);
    if (this.length + tokens.length > this.contextSize)
      throw new SpecdecError(`context full: ${this.length} + ${tokens.length} tokens exceed the context size ${this.contextSize}`);
    const argmaxOnly = request.read === "argmax";
    // The full distribution: node-llama-cpp would otherwise apply its default top-k 40 and
    // top-p 0.95 before reporting probabilities. Sampling settings are ours to apply.
    const want = argmaxOnly
      ? ({ generateNext: { token: true, options: { temperature: 0 } } } as const)
      : ({ generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } } as const);
    const items = tokens.map((t, i) => (outputs === "all" || (outputs === "last" && i === tokens.length - 1) ? ([t as unknown as LlamaToken, want] as const) : (t as unknown as LlamaToken)));
    const results = await this.sequence.controlledEvaluate(items as never);
    const argmax: number[] = [];
    const probs: Distribution[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const next = results[i]?.next;
      if (argmaxOnly && next?.token != null) {
        argmax.push(next.token);
        continue;
      }
      const p = next?.probabilities;
      if (!p) continue;
      // node-llama-cpp returns a Map (sorted by probability); lay it out by token id.
      const d = new Float32Array(this.vocabSize);
      let best = -1;
      for (const [tok, pr] of p) {
        d[tok] = pr;
        if (best < 0 || pr > d[best] || (pr === d[best] && tok < best)) best = tok;
      }
      argmax.push(best);
      probs.push(d);
    }
    return { argmax: Int32Array.from(argmax), probs: argmaxOnly ? undefined : probs };
  }

  async keep(from: number, indices: readonly number[]): Promise<void> {
    if (!isPrefix(indices)) throw new SpecdecError(`the ${this.backend} backend has no tree attention: it can only keep a prefix of a pass`);
    await this.truncate(from + indices.length);
  }

  async truncate(length: number): Promise<void> {
    const end = this.sequence.nextTokenIndex;
    if (length < end) await this.sequence.eraseContextTokenRanges([{ start: length, end }]);
  }

  async reset(): Promise<void> {
    await this.sequence.clearHistory();
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

/**
 * node-llama-cpp's own greedy loop on `seq`, `reps` times: the prompt but its last token
 * evaluated untimed, then up to `maxTokens` tokens generated (fewer where it stops at an
 * end-of-generation token). Milliseconds per run, and the last run's tokens.
 */
export async function nodeLlamaCppGreedyRuns(seq: LlamaContextSequence, prompt: readonly number[], maxTokens: number, reps: number): Promise<{ ms: number[]; tokens: number[] }> {
  const ms: number[] = [];
  let tokens: number[] = [];
  for (let r = 0; r < reps; r++) {
    await seq.clearHistory();
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1) as LlamaToken[]);
    tokens = [];
    const t0 = performance.now();
    for await (const t of seq.evaluate(prompt.slice(-1) as LlamaToken[], { temperature: 0 })) {
      tokens.push(t);
      if (tokens.length >= maxTokens) break;
    }
    ms.push(performance.now() - t0);
  }
  return { ms, tokens };
}
