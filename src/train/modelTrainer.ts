// Training a small llama language model from scratch on plain text: a byte-level BPE tokenizer
// learned from the text (bpeTrainer.ts), then next-token cross-entropy on the built-in trainer
// (llamaModel.ts: LlamaModel / LlamaPass / distillLoss with no target and alpha 0).
//
// Data. The text is read as paragraphs (corpus.ts: one per line, trimmed, blank lines dropped); each is
// tokenized and preceded by <|endoftext|> (the BOS, which is also EOS), and all are concatenated
// into one stream "EOT p1 EOT p2 …". So the model learns to start after BOS, as generate prompts
// do, and to end a paragraph with EOT (an end-of-generation token). A training window is T + 1
// consecutive tokens at a uniformly random offset in the stream (seeded). Held-out text is cut
// into consecutive windows the same way and evaluated at the end (and every evalEvery steps).
// AdamW, linear warm-up + cosine decay, global-norm clipping (optim.ts), as trainDraft.
//
// Threads (config.threads, `--threads`). 1 (the default) is the plain single-thread loop. N > 1
// cuts each step's batch into N shards run in parallel, shard 0 here and the others in worker
// threads, their gradients summed into the full-batch mean before clipping and AdamW
// (dataParallel.ts): the same windows and the same RNG stream, bit-identical from run to run for
// the same N, but not bit-identical to another N (matrix products sum over fewer rows). Only
// trainModelAsync runs it (a step awaits the workers).
//
// Checkpoints (hooks.checkpoint, checkpoint.ts): parameters with their AdamW moments, the step,
// the RNG state, the per-step losses and the trained tokenizer (its hash checked on load, so a
// resumed run does not train it again), tied to a hash of the texts and of every option that
// changes the result. A run stopped (stopAfter, shouldStop) and resumed is bit-identical to an
// uninterrupted one: same parameters, moments and losses. Without a checkpoint nothing of this
// runs and the numbers are those of a plain run. The thread count is part of that hash when it is
// more than 1. The trainer is a generator that yields after each step (and yields a promise while
// a data-parallel step waits for its workers): trainModel drives it synchronously,
// trainModelAsync lets the event loop (SIGINT) in between steps and awaits those promises.
//
// saveModelGguf writes a llama GGUF (F32, tied output: no output.weight), parameters in
// LlamaModel's order and shapes; saveDraftGguf (draftTrainer.ts) writes drafts through it.

import { SpecdecError } from "../errors.js";
import { kv, writeGguf, type GgufWriteEntry, type GgufWriteTensor } from "../gguf/writer.js";
import { SeededRng, uniformInt } from "../sampling/rng.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { bpeTokenizerEntries, tokenizerFromEntries, trainBpe, type BpeTokenizerModel } from "./bpeTrainer.js";
import { checkCheckpointHooks, openResume, paramArrays, restoreRun, runToEnd, runYielding, saveCheckpoint, stopRequested, type CheckpointHooks, type LoadedCheckpoint, type TrainerRun } from "./checkpoint.js";
import { paragraphs } from "./corpus.js";
import { checkBatchSharding, DataParallel } from "./dataParallel.js";
import { LlamaModel, LlamaPass, checkLlamaArch, distillLoss, type LlamaArch, type LossParts, type WindowTrainingConfig } from "./llamaModel.js";
import { AdamW, clipGradNorm, learningRate, zeroGrads, type Param } from "./optim.js";
import type { ProgressHooks, TrainStep } from "./progress.js";
import { sha256 } from "./sha256.js";

export const MODEL_NORM_EPS = 1e-5;
export const MODEL_ROPE_BASE = 10000;

export interface ModelTrainConfig extends WindowTrainingConfig {
  /** Tokenizer vocabulary size (256 bytes + merges + <|endoftext|>); ignored when `tokenizer` is given. */
  vocab: number;
  /** Held-out text, evaluated at the end (and every evalEvery steps). */
  valText?: string;
  /** A tokenizer trained before (skips BPE training). */
  tokenizer?: BpeTokenizerModel;
  /**
   * Threads sharing each step's batch (default 1: the plain single-thread loop). More than 1:
   * data-parallel over worker threads (dataParallel.ts); batch must be divisible by it, and only
   * trainModelAsync runs it.
   */
  threads?: number;
}

export interface ModelEval {
  step: number;
  /** Mean cross-entropy per token (nats). */
  loss: number;
  accuracy: number;
  tokens: number;
}

/** Checkpoints and progress (onPrepare: tokenizer merges; onStep: loss = cross-entropy, accuracy = next-token argmax hits). */
export interface ModelTrainHooks extends CheckpointHooks, ProgressHooks<TrainStep, ModelEval> {}

export interface ModelTrainResult {
  tokenizer: BpeTokenizerModel;
  /** The tokenizer.* GGUF entries. */
  tokenizerEntries: GgufWriteEntry[];
  arch: LlamaArch;
  model: LlamaModel;
  params: Param[];
  /** Per-step training loss (all steps, those before a resume included). */
  losses: number[];
  /** Tokens in the training stream. */
  trainTokens: number;
  /** Held-out evaluation at the end (none when stopped). */
  val?: ModelEval;
  /** Steps done (== config.steps unless stopped). */
  step: number;
  stopped: boolean;
  /** The step the run resumed at. */
  resumedFrom?: number;
}

export const MODEL_CHECKPOINT_KIND = "llama-model";

/** A hash of a trained tokenizer (what tokenizes, not the training statistics). */
export function bpeTokenizerHash(m: BpeTokenizerModel): string {
  return sha256(JSON.stringify({ pre: m.pre, tokens: m.tokens, tokenTypes: m.tokenTypes, merges: m.merges, bos: m.bos, eos: m.eos }));
}

/** The hash a checkpoint is tied to: the texts and every option that changes the result. */
function modelConfigHash(text: string, c: ModelTrainConfig): string {
  const val = c.valText?.trim() ? c.valText : undefined;
  return sha256(
    JSON.stringify({
      kind: MODEL_CHECKPOINT_KIND,
      text: sha256(text),
      val: val === undefined ? null : sha256(val),
      tokenizer: c.tokenizer ? { given: bpeTokenizerHash(c.tokenizer) } : { vocab: c.vocab },
      shape: [c.dim, c.layers, c.heads, c.kvHeads, c.hidden],
      context: c.context,
      steps: c.steps,
      batch: c.batch,
      lr: c.lr,
      seed: c.seed,
      warmup: c.warmup ?? Math.floor(c.steps / 20),
      weightDecay: c.weightDecay ?? 0.01,
      clip: c.clip ?? 1,
      valWindows: c.valWindows ?? 32,
      // Results depend on the thread count; 1 adds nothing, so older checkpoints still resume.
      ...((c.threads ?? 1) > 1 ? { threads: c.threads } : {}),
    }),
  );
}

/** The tokenizer saved in a checkpoint, checked against its hash. */
function checkpointTokenizer(path: string, meta: Record<string, unknown>): BpeTokenizerModel {
  const t = meta.tokenizer as BpeTokenizerModel | undefined;
  const ok = t && typeof t === "object" && Array.isArray(t.tokens) && Array.isArray(t.merges) && Array.isArray(t.tokenTypes);
  if (!ok || bpeTokenizerHash(t) !== meta.tokenizerHash) throw new SpecdecError(`${path} is not a specdec training checkpoint (damaged tokenizer)`);
  return t;
}

/** The stream "EOT p1 EOT p2 …" of a text's paragraphs (see the header). */
export function tokenStream(tokenizer: Tokenizer, text: string): Int32Array {
  const out: number[] = [];
  for (const p of paragraphs(text)) {
    out.push(tokenizer.bos);
    for (const t of tokenizer.tokenize(p)) out.push(t);
  }
  return Int32Array.from(out);
}

function checkSizes(c: ModelTrainConfig): void {
  const int = (x: number, min: number) => Number.isInteger(x) && x >= min;
  if (!int(c.context, 2) || !int(c.batch, 1) || !int(c.steps, 0)) throw new SpecdecError(`bad training sizes: context ${c.context}, batch ${c.batch}, steps ${c.steps}`);
  if (!(c.lr > 0)) throw new SpecdecError(`learning rate must be positive, got ${c.lr}`);
  const threads = c.threads ?? 1;
  if (!int(threads, 1) || threads > 256) throw new SpecdecError(`bad thread count ${threads}: expected an integer from 1 to 256`);
  checkBatchSharding(c.batch, threads);
}

/** Evaluate cross-entropy over consecutive windows of `stream`. */
function evaluate(pass: LlamaPass, stream: Int32Array, maxWindows: number, step: number, inputs: Int32Array, labels: Int32Array): ModelEval {
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
  if ((config.threads ?? 1) > 1) throw new SpecdecError("training with more than one thread needs trainModelAsync");
  return runToEnd(modelTraining(text, config, hooks));
}

/**
 * trainModel, letting the event loop run between steps (so that SIGINT can set shouldStop), and
 * during a data-parallel step while the main thread waits for the workers.
 */
export function trainModelAsync(text: string, config: ModelTrainConfig, hooks: ModelTrainHooks = {}): Promise<ModelTrainResult> {
  return runYielding(modelTraining(text, config, hooks));
}

/** The trainer: yields nothing after each step, or a promise to await (data-parallel workers). */
function* modelTraining(text: string, config: ModelTrainConfig, hooks: ModelTrainHooks): TrainerRun<ModelTrainResult> {
  checkSizes(config);
  checkCheckpointHooks(hooks);
  const { context: T, batch: B, steps } = config;
  const ckPath = hooks.checkpoint;
  const configHash = ckPath ? modelConfigHash(text, config) : "";
  const resumed: LoadedCheckpoint | undefined = hooks.resume ? openResume(ckPath!, MODEL_CHECKPOINT_KIND, configHash) : undefined;
  let bpe = config.tokenizer;
  if (resumed) {
    const saved = checkpointTokenizer(ckPath!, resumed.meta);
    bpe ??= saved;
    hooks.onData?.(`tokenizer: ${bpe.merges.length} merges, ${bpe.tokens.length} tokens, from the checkpoint`);
  } else if (!bpe) {
    const t0 = performance.now();
    const onPrepare = hooks.onPrepare;
    bpe = trainBpe(text, { vocabSize: config.vocab, onProgress: onPrepare && ((done, total) => onPrepare({ what: "merges", done, total })) });
    onPrepare?.({ what: "merges", done: bpe.merges.length, total: bpe.merges.length });
    hooks.onData?.(`tokenizer: ${bpe.merges.length} merges, ${bpe.tokens.length} tokens, from ${bpe.words} distinct words in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const tokenizerEntries = bpeTokenizerEntries(bpe);
  const tokenizer = tokenizerFromEntries(tokenizerEntries);
  const arch: LlamaArch = { vocab: bpe.tokens.length, dim: config.dim, layers: config.layers, heads: config.heads, kvHeads: config.kvHeads, hidden: config.hidden, normEps: MODEL_NORM_EPS, ropeBase: MODEL_ROPE_BASE };
  try {
    checkLlamaArch(arch);
  } catch (e) {
    throw new SpecdecError((e as Error).message);
  }

  const stream = tokenStream(tokenizer, text);
  if (stream.length < T + 1) throw new SpecdecError(`the training text has ${stream.length} tokens, fewer than one window of ${T + 1}`);
  const valStream = config.valText?.trim() ? tokenStream(tokenizer, config.valText) : undefined;
  const valOk = valStream !== undefined && valStream.length >= T + 1;
  hooks.onData?.(`${stream.length} training tokens (${(stream.length / text.length).toFixed(3)} per character)${valStream ? `, ${valStream.length} held-out` : ""}`);

  const rng = new SeededRng(config.seed);
  const threads = config.threads ?? 1;
  // Random initialization either way (the same draws); data-parallel copies it into shared memory.
  const dp = threads > 1 ? new DataParallel(new LlamaModel(arch, rng), B, T, threads) : null;
  try {
    const model = dp ? dp.model : new LlamaModel(arch, rng);
    const pass = dp ? dp.pass : new LlamaPass(model, B, T);
    const V = arch.vocab, N = B * T;
    const inputs = dp ? dp.inputs : new Int32Array(N), labels = dp ? dp.labels : new Int32Array(N);
    const dlogits = dp ? null : new Float32Array(N * V);
    const opt = new AdamW(model.params, { weightDecay: config.weightDecay ?? 0.01 });
    const warmup = config.warmup ?? Math.floor(steps / 20);
    const span = stream.length - T; // window start offsets 0..span-1
    const losses: number[] = [];
    const every = config.evalEvery ?? 0;
    const valWindows = config.valWindows ?? 32;

    let step = 0;
    if (resumed) {
      const pos = restoreRun(resumed, ckPath!, model.params, steps, losses);
      step = pos.step;
      rng.state = pos.rngState;
    }
    const resumedFrom = resumed ? step : undefined;
    const save = () => {
      if (!ckPath) return;
      const arrays = paramArrays(model.params);
      arrays.set("losses", Float64Array.from(losses));
      const meta = { kind: MODEL_CHECKPOINT_KIND, version: 1, configHash, config: { ...config, tokenizer: undefined, valText: undefined }, step, rngState: rng.state, tokenizer: bpe, tokenizerHash: bpeTokenizerHash(bpe!) };
      saveCheckpoint(ckPath, meta, arrays);
    };
    const ckEvery = hooks.checkpointEvery ?? 100;
    if (dp) yield dp.ready();

    let stopped = false;
    while (step < steps) {
      if (stopRequested(hooks, step)) {
        stopped = true;
        break;
      }
      const ts = performance.now();
      for (let b = 0; b < B; b++) {
        const at = uniformInt(rng, span);
        for (let t = 0; t < T; t++) {
          inputs[b * T + t] = stream[at + t];
          labels[b * T + t] = stream[at + t + 1];
        }
      }
      let loss: LossParts;
      if (!dp) {
        loss = distillLoss(pass.forward(inputs), null, labels, 0, N, V, dlogits);
        zeroGrads(model.params);
        pass.backward(dlogits!);
      } else {
        yield dp.step(); // shard 0 here, then wait for the workers' shards
        loss = dp.finish(); // the full-batch mean gradient
      }
      const gradNorm = clipGradNorm(model.params, config.clip ?? 1);
      const lr = learningRate(step, steps, config.lr, warmup);
      opt.step(step + 1, lr);
      losses.push(loss.ce);
      step++;
      hooks.onStep?.({ step, steps, lr, gradNorm, loss: loss.ce, accuracy: loss.agree, ms: performance.now() - ts });
      if (valOk && every > 0 && step % every === 0 && step < steps) hooks.onEval?.(evaluate(pass, valStream!, valWindows, step, inputs, labels));
      if (ckPath && step % ckEvery === 0 && step < steps) save();
      yield;
    }
    save();
    let val: ModelEval | undefined;
    if (valOk && !stopped) {
      val = evaluate(pass, valStream!, valWindows, steps, inputs, labels);
      hooks.onEval?.(val);
    }
    return { tokenizer: bpe, tokenizerEntries, arch, model, params: model.params, losses, trainTokens: stream.length, val, step, stopped, resumedFrom };
  } finally {
    dp?.close();
  }
}

/** GGUF tensors (F32) of LlamaModel parameters, checked against the architecture. */
export function llamaTensors(params: readonly Param[], arch: LlamaArch): GgufWriteTensor[] {
  const expected = new LlamaModel(arch, new SeededRng(0)).params;
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
export function saveModelGguf(path: string, params: readonly Param[], arch: LlamaArch, tokenizerEntries: readonly GgufWriteEntry[], options: SaveModelOptions = {}): void {
  checkLlamaArch(arch);
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
