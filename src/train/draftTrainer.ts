// Distilling a small llama draft model from a target on the built-in engine (DistillSpec idea:
// match the target's next-token distributions, on data like what the draft will see).
//
// Data. The text is read as paragraphs (corpus.ts: one per line); each becomes a sequence of its own with
// BOS, as the generate command's prompts are. A training window is T + 1 tokens from such a
// sequence's start (shorter sequences are padded; padding is masked out of the loss):
//  * data "corpus": the paragraph's own tokens;
//  * data "greedy" (default): the paragraph's first 4–24 tokens (a prompt, cut at random under
//    the seed) continued by the target's own greedy decoding up to T + 1 tokens (or its end of
//    generation). At temperature 0 the draft is asked about exactly such text — the target's
//    output after a prompt — and is right only when it predicts the target's argmax there.
//    The windows are generated once, before training (one cached one-token pass per token).
// Loss, per position: alpha · KL(p_target ‖ p_draft) + (1 − alpha) · CE(next token of the
// window), where p_target comes from the target run over the same window, on the fly, each step.
// AdamW, linear warm-up + cosine decay, global-norm clipping (optim.ts). Windows are drawn from a
// seeded shuffle and all arithmetic is sequential JS, so a run is bit-identical under its seed.
//
// Checkpoints (hooks.checkpoint, checkpoint.ts): parameters with their AdamW moments, the step,
// the RNG state, the shuffle order and its cursor, the per-step losses and the prepared windows
// (a resumed run does not generate them again), tied to the target (its vocabulary fingerprint,
// sizes, file size and the hash of the file's first and last MiB) and to a hash of the texts and
// of every option that changes the result. A run stopped (stopAfter, shouldStop) and resumed is
// bit-identical to an uninterrupted one. Without a checkpoint nothing of this runs. The trainer
// is a generator that yields after each step: trainDraft drives it synchronously,
// trainDraftAsync lets the event loop (SIGINT) in between steps.

import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { BuiltinTarget } from "../targets/builtin.js";
import { SpecdecError } from "../errors.js";
import type { GgufWriteEntry } from "../gguf/writer.js";
import { openGguf } from "../gguf/reader.js";
import { SeededRng, shuffleInPlace, uniformInt } from "../sampling/rng.js";
import type { Rng } from "../types.js";
import { checkCheckpointHooks, openResume, paramArrays, restoreRun, runToEnd, stopRequested, runYielding, saveCheckpoint, type CheckpointHooks, type LoadedCheckpoint, type TrainerRun } from "./checkpoint.js";
import { paragraphs } from "./corpus.js";
import { LlamaModel, LlamaPass, distillLoss, type LlamaArch, type LossParts, type WindowTrainingConfig } from "./llamaModel.js";
import { saveModelGguf } from "./modelTrainer.js";
import { AdamW, clipGradNorm, learningRate, zeroGrads, type Param } from "./optim.js";
import type { ProgressHooks, TrainStep } from "./progress.js";
import { sha256 } from "./sha256.js";

export type DraftData = "corpus" | "greedy";

export interface DraftTrainConfig extends WindowTrainingConfig {
  /** Weight of KL to the target's distribution; 1 − alpha goes to cross-entropy on the window's tokens. */
  alpha: number;
  /** Training text: "greedy" (target continuations of corpus prompts, default) or "corpus". */
  data?: DraftData;
  /** Most training windows prepared (default 512). */
  maxWindows?: number;
}

/** A step of draft training: loss = the distillation loss, accuracy = top-1 agreement with the target (or with the text's tokens at alpha 0). */
export interface DraftStep extends TrainStep {
  /** The loss's parts. */
  parts: LossParts;
}

export interface DraftEval extends LossParts {
  step: number;
}

/** Checkpoints and progress (onPrepare: the training windows). */
export interface DraftTrainHooks extends CheckpointHooks, ProgressHooks<DraftStep, DraftEval> {}

export interface DraftTrainResult {
  model: LlamaModel;
  /** The trained parameters, named as their GGUF tensors. */
  params: Param[];
  /** Per-step training loss (all steps, those before a resume included). */
  losses: number[];
  /** Held-out evaluation at the end (when there is validation text; none when stopped). */
  val?: DraftEval;
  /** Steps done (== config.steps unless stopped). */
  step: number;
  stopped: boolean;
  /** The step the run resumed at. */
  resumedFrom?: number;
}

export const DRAFT_CHECKPOINT_KIND = "llama-draft";

/** The target model's identity: vocabulary, sizes, file size and a hash of the file's first and last MiB. */
export function targetIdentity(target: BuiltinTarget): string {
  const fd = openSync(target.path, "r");
  try {
    const size = fstatSync(fd).size, n = Math.min(size, 1 << 20);
    const head = Buffer.alloc(n), tail = Buffer.alloc(n);
    readSync(fd, head, 0, n, 0);
    readSync(fd, tail, 0, n, size - n);
    return sha256(JSON.stringify({ fingerprint: target.vocab.fingerprint, vocab: target.vocabSize, hidden: target.hiddenSize, context: target.contextSize, size, head: sha256(head), tail: sha256(tail) }));
  } finally {
    closeSync(fd);
  }
}

/** The draft's architecture for a target: the target's vocabulary, norm epsilon and RoPE base. */
export function draftArch(config: Pick<DraftTrainConfig, "dim" | "layers" | "heads" | "kvHeads" | "hidden">, target: BuiltinTarget): LlamaArch {
  const hp = target.hparams;
  if (hp.arch !== "llama" || hp.ropeNeox) throw new SpecdecError(`draft training needs a llama-architecture target (normal RoPE), got ${hp.arch}`);
  return { vocab: target.vocabSize, dim: config.dim, layers: config.layers, heads: config.heads, kvHeads: config.kvHeads, hidden: config.hidden, normEps: hp.normEps, ropeBase: hp.ropeBase };
}

/** Windows of T + 1 tokens, (count, T + 1), −1 after a sequence's end. */
export interface Windows {
  readonly T: number;
  readonly count: number;
  readonly tokens: Int32Array; // (count, T + 1)
}

/**
 * Build training windows from text (see the header). `rng` picks paragraphs and prompt lengths;
 * the target is used (greedy data) and left with an empty cache.
 */
export function buildWindows(target: BuiltinTarget, text: string, T: number, data: DraftData, maxWindows: number, rng: Rng, onProgress?: (done: number, total: number) => void): Windows {
  if (T + 1 > target.contextSize) throw new SpecdecError(`window of ${T} tokens exceeds the target's context ${target.contextSize}`);
  const paras = paragraphs(text);
  if (paras.length === 0) throw new SpecdecError("draft training text has no paragraphs");
  const order = Array.from(paras.keys());
  shuffleInPlace(rng, order);
  const count = Math.min(maxWindows, paras.length);
  const W = T + 1;
  const tokens = new Int32Array(count * W).fill(-1);
  const engine = target.engine, V = target.vocabSize;
  for (let w = 0; w < count; w++) {
    if (onProgress && w % 8 === 0) onProgress(w, count);
    const ids = target.tokenize(paras[order[w]]); // with BOS
    const o = w * W;
    if (data === "corpus") {
      for (let i = 0; i < Math.min(W, ids.length); i++) tokens[o + i] = ids[i];
      continue;
    }
    // A prompt of 4..24 tokens after BOS (at most the paragraph), then the target's greedy tokens.
    const promptLen = Math.min(ids.length, 1 + 4 + uniformInt(rng, 21), W);
    for (let i = 0; i < promptLen; i++) tokens[o + i] = ids[i];
    engine.truncate(0);
    let logits = engine.forward(ids.slice(0, promptLen), { logits: "last" }).logits;
    for (let i = promptLen; i < W; i++) {
      let best = 0;
      for (let v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
      tokens[o + i] = best;
      if (target.eogTokens.has(best as never) || i === W - 1) break;
      logits = engine.forward([best], { logits: "last" }).logits;
    }
  }
  engine.truncate(0);
  onProgress?.(count, count);
  return { T, count, tokens };
}

/**
 * One batch in the pass's layout: inputs (B, T) (padding as token 0), labels (B, T) (−1 on
 * padding), and, when `probs` is given, the target's distributions (B·T, V) over the same windows.
 */
class BatchFiller {
  readonly inputs: Int32Array; // (B, T)
  readonly labels: Int32Array; // (B, T)
  readonly probs: Float32Array; // (B·T, V)

  constructor(
    private readonly target: BuiltinTarget,
    readonly B: number,
    readonly T: number,
  ) {
    this.inputs = new Int32Array(B * T);
    this.labels = new Int32Array(B * T);
    this.probs = new Float32Array(B * T * target.vocabSize);
  }

  /** Fill row b from window w of `win`; with `withTarget`, run the target over it. */
  fill(b: number, win: Windows, w: number, withTarget: boolean): void {
    const { T } = this, W = T + 1, src = w * W, o = b * T, V = this.target.vocabSize;
    let len = 0; // real input tokens in the window
    for (let t = 0; t < T; t++) {
      const tok = win.tokens[src + t];
      this.inputs[o + t] = tok < 0 ? 0 : tok;
      this.labels[o + t] = tok < 0 ? -1 : win.tokens[src + t + 1];
      if (tok >= 0) len = t + 1;
    }
    if (!withTarget) return;
    const engine = this.target.engine;
    engine.truncate(0);
    for (let from = 0; from < len; from += engine.maxBatch) {
      const n = Math.min(engine.maxBatch, len - from);
      const { logits } = engine.forward(this.inputs.subarray(o + from, o + from + n), { logits: "all" });
      for (let t = 0; t < n; t++) softmaxInto(logits, t * V, this.probs, (o + from + t) * V, V);
    }
    engine.truncate(0);
  }
}

function softmaxInto(logits: Float32Array, lo: number, out: Float32Array, oo: number, V: number): void {
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[lo + v] > max) max = logits[lo + v];
  let sum = 0;
  for (let v = 0; v < V; v++) sum += out[oo + v] = Math.exp(logits[lo + v] - max);
  const inv = 1 / sum;
  for (let v = 0; v < V; v++) out[oo + v] *= inv;
}

/** Mean loss parts of the draft over windows (evaluated B at a time, through `pass`). */
function evaluate(pass: LlamaPass, filler: BatchFiller, win: Windows, alpha: number, step: number): DraftEval {
  const V = pass.model.arch.vocab;
  let rows = 0, kl = 0, ce = 0, agree = 0;
  for (let w0 = 0; w0 < win.count; w0 += pass.B) {
    for (let b = 0; b < pass.B; b++) {
      if (w0 + b < win.count) filler.fill(b, win, w0 + b, true);
      else filler.labels.fill(-1, b * pass.T, (b + 1) * pass.T); // a short last batch: mask the rest
    }
    const logits = pass.forward(filler.inputs);
    const l = distillLoss(logits, filler.probs, filler.labels, alpha, pass.N, V, null);
    rows += l.rows;
    kl += l.kl * l.rows;
    ce += l.ce * l.rows;
    agree += l.agree * l.rows;
  }
  const inv = rows > 0 ? 1 / rows : 0;
  return { step, rows, kl: kl * inv, ce: ce * inv, agree: agree * inv, loss: (alpha * kl + (1 - alpha) * ce) * inv };
}

/** Train a draft model for `target` (see the header). Deterministic under config.seed. */
export function trainDraft(target: BuiltinTarget, trainText: string, valText: string, config: DraftTrainConfig, hooks: DraftTrainHooks = {}): DraftTrainResult {
  return runToEnd(draftTraining(target, trainText, valText, config, hooks));
}

/** trainDraft, letting the event loop run between steps (so that SIGINT can set shouldStop). */
export function trainDraftAsync(target: BuiltinTarget, trainText: string, valText: string, config: DraftTrainConfig, hooks: DraftTrainHooks = {}): Promise<DraftTrainResult> {
  return runYielding(draftTraining(target, trainText, valText, config, hooks));
}

/** The hash a checkpoint is tied to: the target, the texts and every option that changes the result. */
function draftConfigHash(targetId: string, trainText: string, valText: string | undefined, c: DraftTrainConfig): string {
  return sha256(
    JSON.stringify({
      kind: DRAFT_CHECKPOINT_KIND,
      target: targetId,
      text: sha256(trainText),
      val: valText === undefined ? null : sha256(valText),
      shape: [c.dim, c.layers, c.heads, c.kvHeads, c.hidden],
      context: c.context,
      steps: c.steps,
      batch: c.batch,
      lr: c.lr,
      seed: c.seed,
      alpha: c.alpha,
      data: c.data ?? "greedy",
      maxWindows: c.maxWindows ?? 512,
      valWindows: c.valWindows ?? 32,
      finalEval: c.evalEvery !== 0,
      warmup: c.warmup ?? Math.floor(c.steps / 20),
      weightDecay: c.weightDecay ?? 0.01,
      clip: c.clip ?? 1,
    }),
  );
}

/** Windows saved in a checkpoint. */
function savedWindows(path: string, ck: LoadedCheckpoint, name: string, T: number): Windows {
  const a = ck.arrays.get(name);
  if (!(a instanceof Int32Array) || a.length === 0 || a.length % (T + 1) !== 0) throw new SpecdecError(`${path} is not a specdec training checkpoint (no ${name})`);
  return { T, count: a.length / (T + 1), tokens: a };
}

function* draftTraining(target: BuiltinTarget, trainText: string, valText: string, config: DraftTrainConfig, hooks: DraftTrainHooks): TrainerRun<DraftTrainResult> {
  const { context: T, batch: B, steps, alpha } = config;
  if (!(Number.isInteger(T) && T >= 2) || !(Number.isInteger(B) && B >= 1) || !(Number.isInteger(steps) && steps >= 0)) throw new SpecdecError(`bad draft training sizes: context ${T}, batch ${B}, steps ${steps}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new SpecdecError(`alpha must be in [0, 1], got ${alpha}`);
  const data = config.data ?? "greedy";
  const arch = draftArch(config, target);
  const V = arch.vocab;
  const withVal = valText.trim() !== "" && (config.valWindows ?? 32) > 0;
  checkCheckpointHooks(hooks);
  const ckPath = hooks.checkpoint;
  const targetId = ckPath ? targetIdentity(target) : "";
  const configHash = ckPath ? draftConfigHash(targetId, trainText, withVal ? valText : undefined, config) : "";
  const resumed: LoadedCheckpoint | undefined = hooks.resume
    ? openResume(ckPath!, DRAFT_CHECKPOINT_KIND, configHash, (meta, path) => {
        if ((meta.target as { identity?: unknown } | undefined)?.identity !== targetId) throw new SpecdecError(`${path}: checkpoint made for another target model`);
      })
    : undefined;

  const t0 = performance.now();
  let train: Windows, val: Windows | undefined;
  if (resumed) {
    train = savedWindows(ckPath!, resumed, "windows.train", T);
    val = withVal ? savedWindows(ckPath!, resumed, "windows.val", T) : undefined;
    hooks.onData?.(`${train.count} training windows${val ? `, ${val.count} held-out` : ""} of ${T} tokens (${data}), from the checkpoint`);
  } else {
    const onPrepare = hooks.onPrepare;
    const onWindows = onPrepare && ((done: number, total: number) => onPrepare({ what: "windows", done, total }));
    train = buildWindows(target, trainText, T, data, config.maxWindows ?? 512, new SeededRng(config.seed ^ 0x5eed), onWindows);
    val = withVal ? buildWindows(target, valText, T, data, config.valWindows ?? 32, new SeededRng(config.seed ^ 0x7a1)) : undefined;
    hooks.onData?.(`${train.count} training windows${val ? `, ${val.count} held-out` : ""} of ${T} tokens (${data}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  const rng = new SeededRng(config.seed);
  const model = new LlamaModel(arch, rng);
  const pass = new LlamaPass(model, B, T);
  const filler = new BatchFiller(target, B, T);
  const dlogits = new Float32Array(B * T * V); // (B·T, V)
  const opt = new AdamW(model.params, { weightDecay: config.weightDecay ?? 0.01 });
  const warmup = config.warmup ?? Math.floor(steps / 20);
  let order: Int32Array = Int32Array.from({ length: train.count }, (_, i) => i);
  let cursor = train.count; // forces a shuffle before the first batch
  const losses: number[] = [];
  const useTarget = alpha > 0;

  let step = 0;
  if (resumed) {
    const pos = restoreRun(resumed, ckPath!, model.params, steps, losses);
    const o = resumed.arrays.get("order"), c = resumed.meta.cursor;
    if (!(o instanceof Int32Array) || o.length !== train.count || typeof c !== "number" || !(Number.isInteger(c) && c >= 0 && c <= train.count))
      throw new SpecdecError(`${ckPath} is not a specdec training checkpoint (bad order or cursor)`);
    order = o;
    cursor = c;
    step = pos.step;
    rng.state = pos.rngState;
  }
  const resumedFrom = resumed ? step : undefined;
  const save = () => {
    if (!ckPath) return;
    const arrays = paramArrays(model.params);
    arrays.set("losses", Float64Array.from(losses));
    arrays.set("order", order);
    arrays.set("windows.train", train.tokens);
    if (val) arrays.set("windows.val", val.tokens);
    const meta = { kind: DRAFT_CHECKPOINT_KIND, version: 1, configHash, target: { identity: targetId, path: target.path }, config, step, cursor, rngState: rng.state };
    saveCheckpoint(ckPath, meta, arrays);
  };
  const ckEvery = hooks.checkpointEvery ?? 100;

  let stopped = false;
  while (step < steps) {
    if (stopRequested(hooks, step)) {
      stopped = true;
      break;
    }
    const ts = performance.now();
    for (let b = 0; b < B; b++) {
      if (cursor >= train.count) {
        shuffleInPlace(rng, order);
        cursor = 0;
      }
      filler.fill(b, train, order[cursor++], useTarget);
    }
    const logits = pass.forward(filler.inputs);
    const loss = distillLoss(logits, useTarget ? filler.probs : null, filler.labels, alpha, pass.N, V, dlogits);
    zeroGrads(model.params);
    pass.backward(dlogits);
    const gradNorm = clipGradNorm(model.params, config.clip ?? 1);
    const lr = learningRate(step, steps, config.lr, warmup);
    opt.step(step + 1, lr);
    losses.push(loss.loss);
    step++;
    hooks.onStep?.({ step, steps, lr, gradNorm, loss: loss.loss, accuracy: loss.agree, parts: loss, ms: performance.now() - ts });
    const every = config.evalEvery ?? 0;
    if (val && every > 0 && step % every === 0 && step < steps) hooks.onEval?.(evaluate(pass, filler, val, alpha, step));
    if (ckPath && step % ckEvery === 0 && step < steps) save();
    yield;
  }
  save();
  let result: DraftEval | undefined;
  if (val && config.evalEvery !== 0 && !stopped) {
    result = evaluate(pass, filler, val, alpha, steps);
    hooks.onEval?.(result);
  }
  return { model, params: model.params, losses, val: result, step, stopped, resumedFrom };
}

/**
 * Write a trained draft as a llama GGUF (F32, tied output: no output.weight) with every
 * `tokenizer.*` key of the target's file, so vocabularies match exactly. Its context length is
 * the target's (RoPE is relative; the drafter must keep up with the target's context).
 * Refuses to replace an existing file unless `overwrite`.
 */
export function saveDraftGguf(path: string, params: readonly Param[], config: Pick<DraftTrainConfig, "dim" | "layers" | "heads" | "kvHeads" | "hidden">, target: BuiltinTarget, options: { overwrite?: boolean; name?: string } = {}): void {
  const tokenizerKeys: GgufWriteEntry[] = [];
  const f = openGguf(target.path);
  try {
    for (const [key, e] of f.metadata) if (key.startsWith("tokenizer.")) tokenizerKeys.push({ key, type: e.type, value: e.value });
  } finally {
    f.close();
  }
  saveModelGguf(path, params, draftArch(config, target), tokenizerKeys, { overwrite: options.overwrite, name: options.name ?? "specdec-draft", contextLength: target.hparams.contextLength });
}
