// Target backend on specdec's own TypeScript engine: GGUF weights in their storage type,
// batch-invariant kernels (a k-token pass gives bit-identical logits to k one-token passes),
// tree attention masks and hidden states.

import { SpecdecError } from "../errors.js";
import { openGguf } from "../gguf/reader.js";
import { readHParams, type HParams } from "../engine/hparams.js";
import { loadLlamaWeights, type LlamaWeights } from "../engine/llamaWeights.js";
import type { Matrix } from "../engine/matrix.js";
import { createHash } from "node:crypto";
import { Transformer } from "../engine/transformer.js";
import { loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import type { EvaluateOptions, TreeTarget } from "../target.js";
import type { Distribution, Token } from "../types.js";

export interface BuiltinOptions {
  /** Context size in tokens. Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Most tokens per forward pass; longer inputs are split. Default 64. */
  maxBatch?: number;
  /** Threads of the engine (main thread included; results identical for any count). Default 1. */
  threads?: number;
  /** "q8": 8-bit activations for products with quantized weights, as llama.cpp (see EngineOptions). Default "f32". */
  activations?: "f32" | "q8";
}

export class BuiltinTarget implements TreeTarget {
  readonly vocabSize: number;
  readonly contextSize: number;
  readonly eogTokens: ReadonlySet<Token>;
  readonly maxBatch: number;
  readonly hiddenSize: number;

  private constructor(
    readonly path: string,
    readonly hparams: HParams,
    readonly tokenizer: Tokenizer,
    private readonly weights: LlamaWeights,
    readonly engine: Transformer,
  ) {
    this.vocabSize = hparams.vocabSize;
    this.contextSize = engine.contextSize;
    this.eogTokens = tokenizer.eogTokens as ReadonlySet<Token>;
    this.maxBatch = engine.maxBatch;
    this.hiddenSize = hparams.dim;
  }

  static async load(path: string, options: BuiltinOptions = {}): Promise<BuiltinTarget> {
    const f = openGguf(path);
    try {
      const hp = readHParams(f);
      const tokenizer = loadTokenizer(f);
      if (tokenizer.vocabSize !== hp.vocabSize) throw new SpecdecError(`${path}: tokenizer has ${tokenizer.vocabSize} tokens but the model ${hp.vocabSize}`);
      const contextSize = options.contextSize ?? Math.min(hp.contextLength, 4096);
      const weights = loadLlamaWeights(f, hp);
      const engine = new Transformer(hp, weights, contextSize, options.maxBatch ?? 64, { threads: options.threads, activations: options.activations });
      return new BuiltinTarget(path, hp, tokenizer, weights, engine);
    } finally {
      f.close(); // weights were read into memory of their own
    }
  }

  /** The output (vocabulary) projection, (vocab, dim): Medusa heads may share it. */
  get outputMatrix(): Matrix {
    return this.weights.output;
  }

  /** A fingerprint of the vocabulary (sha256 of the token texts), to tie helper files to this model. */
  get vocabFingerprint(): string {
    return (this.fingerprint ??= vocabFingerprint(Array.from({ length: this.vocabSize }, (_, i) => this.tokenizer.tokenText(i))));
  }
  private fingerprint?: string;

  get length(): number {
    return this.engine.length;
  }

  tokenize(text: string, addBos?: boolean): Token[] {
    const ids = this.tokenizer.tokenize(text, { addSpecial: false });
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

  async evaluate(tokens: readonly Token[], options: EvaluateOptions = {}): Promise<Distribution[]> {
    await yieldNowAndThen();
    const outputs = options.outputs ?? "all";
    if (this.length + tokens.length > this.contextSize)
      throw new SpecdecError(`context full: ${this.length} + ${tokens.length} tokens exceed the context size ${this.contextSize}`);
    const dists: Distribution[] = [];
    const V = this.vocabSize;
    for (let from = 0; from < tokens.length; from += this.engine.maxBatch) {
      options.signal?.throwIfAborted();
      const chunk = tokens.length <= this.engine.maxBatch ? tokens : tokens.slice(from, from + this.engine.maxBatch);
      const lastChunk = from + chunk.length === tokens.length;
      const want = outputs === "all" ? "all" : outputs === "last" && lastChunk ? "last" : "none";
      const { logits } = this.engine.forward(chunk, { logits: want });
      for (let o = 0; o < logits.length; o += V) dists.push(options.argmaxOnly ? oneHotArgmax(logits, o, V) : softmax(logits, o, V));
    }
    return dists;
  }

  async evaluateTree(tokens: readonly Token[], parents: readonly number[], options: { hidden?: boolean; signal?: AbortSignal } = {}): Promise<{ dists: Distribution[]; hidden?: Float32Array }> {
    await yieldNowAndThen();
    options.signal?.throwIfAborted();
    if (tokens.length > this.maxBatch) throw new SpecdecError(`a tree of ${tokens.length} tokens exceeds the engine's batch of ${this.maxBatch}`);
    if (this.length + tokens.length > this.contextSize)
      throw new SpecdecError(`context full: ${this.length} + ${tokens.length} tokens exceed the context size ${this.contextSize}`);
    const V = this.vocabSize;
    const { logits, hidden } = this.engine.forward(tokens, { parents, logits: "all", hidden: options.hidden });
    const dists: Distribution[] = [];
    for (let o = 0; o < logits.length; o += V) dists.push(softmax(logits, o, V));
    return options.hidden ? { dists, hidden: Float32Array.from(hidden) } : { dists };
  }

  async keep(from: number, indices: readonly number[]): Promise<void> {
    this.engine.keep(from, indices);
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

// The engine computes synchronously, so a decoding loop over it never returns to the event loop
// by itself: signals (Ctrl-C) and timers would wait for the whole generation. Every 50 ms a pass
// first lets the event loop run.
let lastYield = performance.now();
async function yieldNowAndThen(): Promise<void> {
  if (performance.now() - lastYield < 50) return;
  await new Promise((resolve) => setImmediate(resolve));
  lastYield = performance.now();
}

/** The one-hot distribution at the largest of logits[off, off + n) (lowest index on a tie). */
function oneHotArgmax(logits: Float32Array, off: number, n: number): Distribution {
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[off + i] > logits[off + best]) best = i;
  const out = new Float32Array(n);
  out[best] = 1;
  return out;
}

/** softmax(logits[off, off + n)) as a new distribution. */
export function softmax(logits: Float32Array, off: number, n: number): Distribution {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[off + i] > max) max = logits[off + i];
  const out = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += out[i] = Math.exp(logits[off + i] - max);
  const inv = 1 / sum;
  for (let i = 0; i < n; i++) out[i] *= inv;
  return out;
}

/** sha256 over the token texts, each followed by a NUL byte. */
export function vocabFingerprint(tokens: readonly string[]): string {
  const h = createHash("sha256");
  for (const t of tokens) h.update(t).update("\0");
  return h.digest("hex");
}
