// Target backend on llama.cpp through node-llama-cpp (pinned 3.21.1).
// One context with one sequence per model; the sequence's KV cache is the Target's cache.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token as LlamaToken } from "node-llama-cpp";
import { excerpt, SpecdecError } from "../errors.js";
import { inspectModelFile, type VocabSignature } from "../gguf/modelInfo.js";
import type { EvaluateOptions, Target } from "../target.js";
import type { Distribution, Token } from "../types.js";

export interface LlamaCppOptions {
  /** Context size in tokens. Default: the model's training context. */
  contextSize?: number;
  /**
   * CPU threads for evaluation. Default 1: on the 2-core machines here node-llama-cpp's
   * default (all cores) measured ~2 evaluations/s instead of ~1,500/s on stories260K,
   * and 2 threads were slower than 1 for small models.
   */
  threads?: number;
}

let llamaPromise: Promise<Llama> | undefined;
function loadLlama(): Promise<Llama> {
  // Prebuilt CPU binaries only: never try to download or compile at run time.
  llamaPromise ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, logger: () => {} });
  return llamaPromise;
}

export class LlamaCppTarget implements Target {
  readonly vocabSize: number;
  readonly contextSize: number;
  readonly eogTokens: ReadonlySet<Token>;

  private constructor(
    readonly path: string,
    readonly vocab: VocabSignature,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
  ) {
    this.vocabSize = vocab.tokens.length;
    this.contextSize = context.contextSize;
    const eog = new Set<Token>();
    for (let t = 0; t < this.vocabSize; t++) if (model.isEogToken(t as LlamaToken)) eog.add(t as Token);
    this.eogTokens = eog;
  }

  static async load(path: string, options: LlamaCppOptions = {}): Promise<LlamaCppTarget> {
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
    return new LlamaCppTarget(path, info.vocab, model, context, context.getSequence());
  }

  get length(): number {
    return this.sequence.nextTokenIndex;
  }

  tokenize(text: string, addBos?: boolean): Token[] {
    const ids = this.model.tokenize(text, false) as number[];
    const bos = this.model.tokens.bos;
    if ((addBos ?? this.model.tokens.shouldPrependBosToken) && bos !== null) ids.unshift(bos);
    return ids as Token[];
  }

  detokenize(tokens: readonly Token[], previous?: readonly Token[]): string {
    return this.model.detokenize(tokens as unknown as LlamaToken[], false, previous as unknown as LlamaToken[] | undefined);
  }

  async evaluate(tokens: readonly Token[], options: EvaluateOptions = {}): Promise<Distribution[]> {
    const outputs = options.outputs ?? "all";
    options.signal?.throwIfAborted();
    if (this.length + tokens.length > this.contextSize)
      throw new SpecdecError(`context full: ${this.length} + ${tokens.length} tokens exceed the context size ${this.contextSize}`);
    // The full distribution: node-llama-cpp would otherwise apply its default top-k 40 and
    // top-p 0.95 before reporting probabilities. Sampling settings are ours to apply.
    const want = options.argmaxOnly
      ? ({ generateNext: { token: true, options: { temperature: 0 } } } as const)
      : ({ generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } } as const);
    const items = tokens.map((t, i) => (outputs === "all" || (outputs === "last" && i === tokens.length - 1) ? ([t as unknown as LlamaToken, want] as const) : (t as unknown as LlamaToken)));
    const results = await this.sequence.controlledEvaluate(items as never);
    const dists: Distribution[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const next = results[i]?.next;
      if (options.argmaxOnly && next?.token != null) {
        const d = new Float32Array(this.vocabSize);
        d[next.token] = 1;
        dists.push(d);
        continue;
      }
      const probs = next?.probabilities;
      if (!probs) continue;
      // node-llama-cpp returns a Map (sorted by probability); lay it out by token id.
      const d = new Float32Array(this.vocabSize);
      for (const [tok, pr] of probs) d[tok] = pr;
      dists.push(d);
    }
    return dists;
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

/** llama.cpp's message, one line; it may quote the file (an architecture name), so an excerpt. */
function firstLine(e: unknown): string {
  return excerpt(String((e as Error)?.message ?? e).split("\n")[0], 300);
}
