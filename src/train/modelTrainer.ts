// Training a small llama language model from scratch on plain text: a byte-level BPE tokenizer
// learned from the text (bpeTrainer.ts), then next-token cross-entropy on the built-in trainer
// (draftModel.ts: DraftModel / DraftPass / distillLoss with no target and alpha 0).
//
// Data. The text is read as paragraphs (one per line, trimmed, empty lines dropped); each is
// tokenized and preceded by <|endoftext|> (the BOS, which is also EOS), and all are concatenated
// into one stream "EOT p1 EOT p2 …". So the model learns to start after BOS, as generate prompts
// do, and to end a paragraph with EOT (an end-of-generation token). A training window is T + 1
// consecutive tokens at a uniformly random offset in the stream (seeded). Held-out text is cut
// into consecutive windows the same way and evaluated at the end (and every evalEvery steps).
// AdamW, linear warm-up + cosine decay, global-norm clipping (optim.ts), as trainDraft.
//
// saveModelGguf writes a llama GGUF (F32, tied output: no output.weight), parameters in
// DraftModel's order and shapes; saveDraftGguf (draftTrainer.ts) writes drafts through it.

import { SpecdecError } from "../errors.js";
import { kv, writeGguf, type GgufWriteEntry, type GgufWriteTensor } from "../gguf/writer.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { bpeTokenizerEntries, tokenizerFromEntries, trainBpe, type BpeTokenizerModel } from "./bpeTrainer.js";
import { DraftModel, DraftPass, checkArch, distillLoss, type DraftArch, type LossParts, type WindowTrainingConfig } from "./draftModel.js";
import { AdamW, clipGradNorm, learningRate, zeroGrads, type Param } from "./optim.js";
import { TrainRng } from "./rng.js";

export const MODEL_NORM_EPS = 1e-5;
export const MODEL_ROPE_BASE = 10000;

export interface ModelTrainConfig extends WindowTrainingConfig {
  /** Tokenizer vocabulary size (256 bytes + merges + <|endoftext|>); ignored when `tokenizer` is given. */
  vocab: number;
  /** Held-out text, evaluated at the end (and every evalEvery steps). */
  valText?: string;
  /** A tokenizer trained before (skips BPE training). */
  tokenizer?: BpeTokenizerModel;
}

export interface ModelStepInfo {
  step: number; // 1-based
  steps: number;
  lr: number;
  gradNorm: number;
  loss: number;
  /** Fraction of positions where the argmax is the next token. */
  accuracy: number;
  ms: number;
}

export interface ModelEval {
  step: number;
  /** Mean cross-entropy per token (nats). */
  loss: number;
  accuracy: number;
  tokens: number;
}

export interface ModelTrainHooks {
  /** Tokenizer training progress and data messages. */
  onData?(message: string): void;
  onStep?(info: ModelStepInfo): void;
  onEval?(info: ModelEval): void;
}

export interface ModelTrainResult {
  tokenizer: BpeTokenizerModel;
  /** The tokenizer.* GGUF entries. */
  tokenizerEntries: GgufWriteEntry[];
  arch: DraftArch;
  model: DraftModel;
  params: Param[];
  /** Per-step training loss. */
  losses: number[];
  /** Tokens in the training stream. */
  trainTokens: number;
  val?: ModelEval;
}

/** The stream "EOT p1 EOT p2 …" of a text's paragraphs (see the header). */
export function tokenStream(tokenizer: Tokenizer, text: string): Int32Array {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const p = line.trim();
    if (!p) continue;
    out.push(tokenizer.bos);
    for (const t of tokenizer.tokenize(p)) out.push(t);
  }
  return Int32Array.from(out);
}

function checkSizes(c: ModelTrainConfig): void {
  const int = (x: number, min: number) => Number.isInteger(x) && x >= min;
  if (!int(c.context, 2) || !int(c.batch, 1) || !int(c.steps, 0)) throw new SpecdecError(`bad training sizes: context ${c.context}, batch ${c.batch}, steps ${c.steps}`);
  if (!(c.lr > 0)) throw new SpecdecError(`learning rate must be positive, got ${c.lr}`);
}

/** Evaluate cross-entropy over consecutive windows of `stream`. */
function evaluate(pass: DraftPass, stream: Int32Array, maxWindows: number, step: number, inputs: Int32Array, labels: Int32Array): ModelEval {
  const { B, T, N } = pass;
  const V = pass.model.arch.vocab;
  const count = Math.min(maxWindows, Math.floor((stream.length - 1) / T));
  let rows = 0, ce = 0, agree = 0;
  for (let w0 = 0; w0 < count; w0 += B) {
    for (let b = 0; b < B; b++) {
      const w = w0 + b;
      for (let t = 0; t < T; t++) {
        const i = w * T + t;
        inputs[b * T + t] = w < count ? stream[i] : 0;
        labels[b * T + t] = w < count ? stream[i + 1] : -1;
      }
    }
    const l = distillLoss(pass.forward(inputs), null, labels, 0, N, V, null);
    rows += l.rows;
    ce += l.ce * l.rows;
    agree += l.agree * l.rows;
  }
  return { step, loss: rows ? ce / rows : NaN, accuracy: rows ? agree / rows : NaN, tokens: rows };
}

/** Train a tokenizer (unless given) and a llama model on `text`. Deterministic under config.seed. */
export function trainModel(text: string, config: ModelTrainConfig, hooks: ModelTrainHooks = {}): ModelTrainResult {
  checkSizes(config);
  const { context: T, batch: B, steps } = config;
  let bpe = config.tokenizer;
  if (!bpe) {
    const t0 = performance.now();
    bpe = trainBpe(text, { vocabSize: config.vocab });
    hooks.onData?.(`tokenizer: ${bpe.merges.length} merges, ${bpe.tokens.length} tokens, from ${bpe.words} distinct words in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const tokenizerEntries = bpeTokenizerEntries(bpe);
  const tokenizer = tokenizerFromEntries(tokenizerEntries);
  const arch: DraftArch = { vocab: bpe.tokens.length, dim: config.dim, layers: config.layers, heads: config.heads, kvHeads: config.kvHeads, hidden: config.hidden, normEps: MODEL_NORM_EPS, ropeBase: MODEL_ROPE_BASE };
  try {
    checkArch(arch);
  } catch (e) {
    throw new SpecdecError((e as Error).message);
  }

  const stream = tokenStream(tokenizer, text);
  if (stream.length < T + 1) throw new SpecdecError(`the training text has ${stream.length} tokens, fewer than one window of ${T + 1}`);
  const valStream = config.valText?.trim() ? tokenStream(tokenizer, config.valText) : undefined;
  const valOk = valStream !== undefined && valStream.length >= T + 1;
  hooks.onData?.(`${stream.length} training tokens (${(stream.length / text.length).toFixed(3)} per character)${valStream ? `, ${valStream.length} held-out` : ""}`);

  const rng = new TrainRng(config.seed);
  const model = new DraftModel(arch, rng);
  const pass = new DraftPass(model, B, T);
  const V = arch.vocab, N = B * T;
  const inputs = new Int32Array(N), labels = new Int32Array(N);
  const dlogits = new Float32Array(N * V);
  const opt = new AdamW(model.params, { weightDecay: config.weightDecay ?? 0.01 });
  const warmup = config.warmup ?? Math.floor(steps / 20);
  const span = stream.length - T; // window start offsets 0..span-1
  const losses: number[] = [];
  const every = config.evalEvery ?? 0;
  const valWindows = config.valWindows ?? 32;

  for (let step = 0; step < steps; step++) {
    const ts = performance.now();
    for (let b = 0; b < B; b++) {
      const at = rng.int(span);
      for (let t = 0; t < T; t++) {
        inputs[b * T + t] = stream[at + t];
        labels[b * T + t] = stream[at + t + 1];
      }
    }
    const loss: LossParts = distillLoss(pass.forward(inputs), null, labels, 0, N, V, dlogits);
    zeroGrads(model.params);
    pass.backward(dlogits);
    const gradNorm = clipGradNorm(model.params, config.clip ?? 1);
    const lr = learningRate(step, steps, config.lr, warmup);
    opt.step(step + 1, lr);
    losses.push(loss.ce);
    hooks.onStep?.({ step: step + 1, steps, lr, gradNorm, loss: loss.ce, accuracy: loss.agree, ms: performance.now() - ts });
    if (valOk && every > 0 && (step + 1) % every === 0 && step + 1 < steps) hooks.onEval?.(evaluate(pass, valStream!, valWindows, step + 1, inputs, labels));
  }
  let val: ModelEval | undefined;
  if (valOk) {
    val = evaluate(pass, valStream!, valWindows, steps, inputs, labels);
    hooks.onEval?.(val);
  }
  return { tokenizer: bpe, tokenizerEntries, arch, model, params: model.params, losses, trainTokens: stream.length, val };
}

/**
 * GGUF tensors (F32) of DraftModel parameters, checked against the architecture. The same
 * lines as in saveDraftGguf (draftTrainer.ts), which could share this helper.
 */
export function llamaTensors(params: readonly Param[], arch: DraftArch): GgufWriteTensor[] {
  const expected = new DraftModel(arch, new TrainRng(0)).params;
  if (params.length !== expected.length || params.some((p, i) => p.name !== expected[i].name || p.value.length !== expected[i].value.length))
    throw new SpecdecError(`parameters do not match the architecture ${JSON.stringify(arch)}`);
  return params.map((p) => ({
    name: p.name,
    dims: [...p.shape].reverse(), // ggml order: contiguous dimension first
    type: 0, // GGML_TYPE_F32
    data: new Uint8Array(p.value.buffer, p.value.byteOffset, p.value.byteLength),
  }));
}

export interface SaveModelOptions {
  overwrite?: boolean;
  name?: string;
  /** llama.context_length (default 2048; RoPE is relative, the trained window may be shorter). */
  contextLength?: number;
}

/**
 * Write a complete llama GGUF (F32, tied output) with the given tokenizer.* entries.
 * Refuses to replace an existing file unless `overwrite`.
 */
export function saveModelGguf(path: string, params: readonly Param[], arch: DraftArch, tokenizerEntries: readonly GgufWriteEntry[], options: SaveModelOptions = {}): void {
  checkArch(arch);
  const tokens = tokenizerEntries.find((e) => e.key === "tokenizer.ggml.tokens");
  const n = tokens && typeof tokens.value === "object" && tokens.value !== null && "items" in tokens.value ? tokens.value.items.length : -1;
  if (n !== arch.vocab) throw new SpecdecError(`the tokenizer has ${n} tokens but the model's vocabulary is ${arch.vocab}`);
  const metadata: GgufWriteEntry[] = [
    kv.string("general.architecture", "llama"),
    kv.string("general.name", options.name ?? "specdec-model"),
    kv.u32("general.file_type", 0), // all F32
    kv.u32("llama.context_length", options.contextLength ?? 2048),
    kv.u32("llama.embedding_length", arch.dim),
    kv.u32("llama.feed_forward_length", arch.hidden),
    kv.u32("llama.block_count", arch.layers),
    kv.u32("llama.attention.head_count", arch.heads),
    kv.u32("llama.attention.head_count_kv", arch.kvHeads),
    kv.u32("llama.rope.dimension_count", arch.dim / arch.heads),
    kv.f32("llama.rope.freq_base", arch.ropeBase),
    kv.f32("llama.attention.layer_norm_rms_epsilon", arch.normEps),
    kv.u32("llama.vocab_size", arch.vocab),
    ...tokenizerEntries,
  ];
  writeGguf(path, { metadata, tensors: llamaTensors(params, arch), overwrite: options.overwrite });
}
