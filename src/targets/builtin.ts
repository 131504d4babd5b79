// Target on specdec's own TypeScript + WebAssembly engine: GGUF weights in their storage type,
// batch-invariant kernels (a k-token pass gives bit-identical logits to k one-token passes),
// tree attention masks and hidden states.

import { SpecdecError } from "../errors.js";
import { openGguf } from "../gguf/reader.js";
import { describeModelFile, type ModelFileInfo } from "../gguf/modelInfo.js";
import { readHParams, type HParams } from "../engine/hparams.js";
import { loadLlamaWeights, type LlamaWeights } from "../engine/llamaWeights.js";
import { Transformer } from "../engine/transformer.js";
import { loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import type { Distribution, Token } from "../types.js";
import { argmaxOf, softmax } from "./logits.js";
import { isPrefix, type PassRequest, type PassResult, type Target, type TargetCapabilities, type TokenMatrices, type Vocabulary } from "./target.js";

export interface BuiltinOptions {
  /** Context size in tokens. Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Most tokens per forward pass; longer chains are split. Default 64. */
  maxBatch?: number;
  /** Threads of the engine (main thread included; results are bit-identical for any count). Default 1. */
  threads?: number;
  /**
   * Let each pass choose its thread count, 1 .. this (`PassRequest.threads`, chosen by the cost
   * model per pass size). Default: none, every pass on `threads`.
   */
  maxThreads?: number;
  /** "q8": 8-bit activations for products with quantized weights, as llama.cpp (see EngineOptions). Default "f32". */
  activations?: "f32" | "q8";
}

export class BuiltinTarget implements Target {
  readonly backend = "builtin";
  readonly capabilities: TargetCapabilities = { treeAttention: true, hiddenStates: true };
  readonly vocabSize: number;
  readonly vocab: Vocabulary;
  readonly contextSize: number;
  readonly eogTokens: ReadonlySet<Token>;
  readonly maxBatch: number;
  readonly hiddenSize: number;
  readonly threadCounts?: readonly number[];
  readonly kernels: string;

  private constructor(
    readonly file: ModelFileInfo,
    readonly hparams: HParams,
    readonly tokenizer: Tokenizer,
    private readonly weights: LlamaWeights,
    readonly engine: Transformer,
    private readonly options: BuiltinOptions,
  ) {
    this.vocabSize = hparams.vocabSize;
    this.vocab = file.vocab;
    this.contextSize = engine.contextSize;
    this.eogTokens = tokenizer.eogTokens as ReadonlySet<Token>;
    this.maxBatch = engine.maxBatch;
    this.hiddenSize = hparams.dim;
    this.kernels = engine.kernels;
    if ((options.maxThreads ?? 1) > 1) this.threadCounts = Array.from({ length: options.maxThreads! }, (_, i) => i + 1);
  }

  /** Read a model file (once: header, tokenizer and weights) onto the built-in engine. */
  static async load(path: string, options: BuiltinOptions = {}): Promise<BuiltinTarget> {
    const f = openGguf(path);
    try {
      const hp = readHParams(f);
      const file = describeModelFile(f);
      const tokenizer = loadTokenizer(f);
      if (tokenizer.vocabSize !== hp.vocabSize) throw new SpecdecError(`${path}: tokenizer has ${tokenizer.vocabSize} tokens but the model ${hp.vocabSize}`);
      const contextSize = options.contextSize ?? Math.min(hp.contextLength, 4096);
      const weights = loadLlamaWeights(f, hp);
      const engine = newEngine(hp, weights, contextSize, options.maxBatch ?? 64, options);
      return new BuiltinTarget(file, hp, tokenizer, weights, engine, options);
    } finally {
      f.close(); // weights were read into memory of their own
    }
  }

  /** A second target over the same weights and tokenizer, with its own engine (KV cache and buffers). */
  async fork(): Promise<BuiltinTarget> {
    const engine = newEngine(this.hparams, this.weights, this.contextSize, this.maxBatch, this.options);
    return new BuiltinTarget(this.file, this.hparams, this.tokenizer, this.weights, engine, this.options);
  }

  get path(): string {
    return this.file.path;
  }

  get length(): number {
    return this.engine.length;
  }

  tokenMatrices(): TokenMatrices {
    return { embedding: this.weights.embed, output: this.weights.output };
  }

  tokenize(text: string, addBos?: boolean, parseSpecial = false): Token[] {
    const ids = this.tokenizer.tokenize(text, { addSpecial: false, parseSpecial });
    if ((addBos ?? this.tokenizer.addBos) && this.tokenizer.bos >= 0) ids.unshift(this.tokenizer.bos);
    return ids as Token[];
  }

  detokenize(tokens: readonly Token[], previous?: readonly Token[]): string {
    const opts = { removeSpecial: true, cleanSpaces: false };
    if (!previous || previous.length === 0) return this.tokenizer.detokenize(tokens, opts);
    // The text tokens add after `previous` (leading-space rules depend on what came before).
    const before = this.tokenizer.detokenize(previous, opts);
    const all = this.tokenizer.detokenize([...previous, ...tokens], opts);
    return all.startsWith(before) ? all.slice(before.length) : this.tokenizer.detokenize(tokens, opts);
  }

  async evaluate(tokens: readonly Token[], request: PassRequest = {}): Promise<PassResult> {
    await yieldNowAndThen();
    const outputs = request.outputs ?? "all";
    const read = request.read ?? "probabilities";
    request.signal?.throwIfAborted();
    if (this.length + tokens.length > this.contextSize)
      throw new SpecdecError(`context full: ${this.length} + ${tokens.length} tokens exceed the context size ${this.contextSize}`);
    const parents = request.parents;
    if (parents && parents.length !== tokens.length) throw new SpecdecError(`a pass of ${tokens.length} tokens got ${parents.length} parents`);
    const tree = parents !== undefined && !parents.every((p, i) => p === i - 1);
    if (tree && tokens.length > this.maxBatch) throw new SpecdecError(`a tree of ${tokens.length} tokens exceeds the engine's batch of ${this.maxBatch}`);

    const V = this.vocabSize, D = this.hiddenSize;
    const nOut = outputs === "all" ? tokens.length : outputs === "last" && tokens.length > 0 ? 1 : 0;
    const argmax = new Int32Array(nOut);
    const probs: Distribution[] | undefined = read === "probabilities" ? [] : undefined;
    const hidden = request.hidden ? new Float32Array(nOut * D) : undefined;
    const threads = request.threads !== undefined && this.threadCounts?.includes(request.threads) ? request.threads : this.options.threads ?? 1;
    this.engine.setThreads(threads);
    let o = 0; // outputs written
    // A chain longer than one pass goes in several; a tree is one pass.
    for (let from = 0; from < tokens.length; from += this.maxBatch) {
      request.signal?.throwIfAborted();
      const chunk = tokens.length <= this.maxBatch ? tokens : tokens.slice(from, from + this.maxBatch);
      const lastChunk = from + chunk.length === tokens.length;
      const want = outputs === "all" ? "all" : outputs === "last" && lastChunk ? "last" : "none";
      const r = this.engine.forward(chunk, { parents: tree ? parents : undefined, logits: want, hidden: hidden !== undefined && want !== "none" });
      const n = r.logits.length / V;
      for (let i = 0; i < n; i++, o++) {
        argmax[o] = argmaxOf(r.logits, i * V, V);
        if (probs) probs.push(softmax(r.logits, i * V, V));
      }
      if (hidden && want !== "none") hidden.set(want === "last" ? r.hidden.subarray((chunk.length - 1) * D, chunk.length * D) : r.hidden, (o - n) * D);
    }
    return { argmax, probs, hidden };
  }

  async keep(from: number, indices: readonly number[]): Promise<void> {
    if (isPrefix(indices)) await this.truncate(from + indices.length);
    else this.engine.keep(from, indices);
  }

  async truncate(length: number): Promise<void> {
    if (length < this.engine.length) this.engine.truncate(length);
  }

  async reset(): Promise<void> {
    this.engine.truncate(0);
  }

  async dispose(): Promise<void> {
    this.engine.dispose();
  }
}

/** An engine whose thread pool has room for the most threads a pass may ask for. */
function newEngine(hp: HParams, weights: LlamaWeights, contextSize: number, maxBatch: number, options: BuiltinOptions): Transformer {
  const threads = Math.max(options.threads ?? 1, options.maxThreads ?? 1);
  return new Transformer(hp, weights, contextSize, maxBatch, { threads, activations: options.activations });
}

// The engine computes synchronously, so a decoding loop over it never returns to the event loop
// by itself: signals (Ctrl-C) and timers would wait for the whole generation. Every 50 ms a pass
// first lets the event loop run.
let lastYield = performance.now();
async function yieldNowAndThen(): Promise<void> {
  if (performance.now() - lastYield < 50) return;
  await new Promise((resolve) => setImmediate(resolve));
  lastYield = performance.now();
}
