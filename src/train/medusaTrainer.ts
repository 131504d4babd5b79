// Training Medusa-1 heads by self-distillation on the built-in engine.
//
// Data. The corpus is read as paragraphs (corpus.ts: one per line); each becomes a sequence of its own
// with BOS, as the generate command's prompts do. The target runs over it and we keep the final
// hidden state h at each position p used for training, with labels for head k = 0 .. K − 1:
//
//  * targets "greedy" (default): the token that greedy decoding would produce k + 2 steps after
//    p. That is what a head is right about at temperature 0: the verifier accepts head k's guess
//    only if it equals the target's own greedy continuation. The common approximation — the
//    target's argmax of the next token at corpus position p + k + 1 (targets "argmax" here) —
//    conditions on the corpus tokens p + 1 .. p + k + 1, not on the target's own choices, and
//    is only right where the target would have produced the corpus. To get exact labels
//    cheaply we take a prefix of each paragraph (4 to 96 tokens, cut at random under the data
//    seed) as a prompt and let the target continue it greedily (`continuation` tokens, ending
//    at an end-of-generation token). At every position p from the last prompt token on, the
//    sequence after p IS the greedy continuation from p, so seq[p + 2 + k] is the exact label;
//    these positions are also where the heads will be queried (after a prompt, inside the
//    target's own output), and they cost one cached single-token pass each.
//  * targets "corpus": the corpus tokens: label seq[p + 2 + k] at every corpus position.
//  * targets "argmax": the cheap approximation above, at every corpus position.
//
// Model. Head k: z = W_k h + b_k, h' = h + SiLU(z), logits = P_k h' — P_k its own projection
// (started from the target's output matrix, dequantized with readRow) or, with projection
// "shared", the target's output matrix frozen (not written to the heads file). Loss: the sum
// over heads of the mean cross-entropy against the hard labels. AdamW, warm-up + cosine,
// global-norm clipping; batches from a seeded shuffle, so a run is deterministic under its seed
// and resumes bit-identically from a checkpoint.
//
// The defaults (greedy targets, own projection, lr 1e-2) are the choices that measured best on
// stories260K (docs/measurements.md, "Medusa heads").

import type { BuiltinTarget } from "../targets/builtin.js";
import { SpecdecError } from "../errors.js";
import type { Rng, Token } from "../types.js";
import type { MedusaHeadWeights } from "../drafters/medusaHeads.js";
import { SeededRng, shuffleInPlace, standardNormal, uniformInt } from "../sampling/rng.js";
import { checkCheckpointHooks, openResume, paramArrays, startShuffledRun, saveCheckpoint, stopRequested, type CheckpointHooks, type LoadedCheckpoint } from "./checkpoint.js";
import { holdOut, medusaHoldout, paragraphs, type TrainText } from "./corpus.js";
import { linearBackward, linearForward, residualBackward, residualForward, softmaxCrossEntropy } from "./layers.js";
import { TrainOptionError } from "./optionError.js";
import { AdamW, clipGradNorm, learningRate, makeParam, zeroGrads, type Param } from "./optim.js";
import type { ProgressHooks, TrainStep } from "./progress.js";
import { sha256 } from "./sha256.js";

export type MedusaTargets = "greedy" | "corpus" | "argmax";
export type MedusaProjection = "own" | "shared";

export interface MedusaTrainConfig {
  /** Number of heads K. */
  heads: number;
  /** Optimizer updates. */
  steps: number;
  /** Examples (positions) per update. */
  batch: number;
  /** Peak learning rate. */
  lr: number;
  seed: number;
  targets: MedusaTargets;
  projection: MedusaProjection;
  /** Most training positions collected from the corpus. */
  maxExamples: number;
  /** Most held-out positions evaluated. */
  valExamples: number;
  /** Fraction of the corpus's paragraphs (its end) held out when there is no separate validation text. */
  holdout: number;
  /** Greedy tokens generated after each prompt (targets "greedy"). */
  continuation: number;
  warmup: number;
  weightDecay: number;
  clip: number;
}

export const MEDUSA_CHECKPOINT_KIND = "medusa-heads";

export const MEDUSA_TRAIN_DEFAULTS: MedusaTrainConfig = {
  heads: 4,
  steps: 2000,
  batch: 64,
  lr: 1e-2,
  seed: 0,
  targets: "greedy",
  projection: "own",
  maxExamples: 100_000,
  valExamples: 5000,
  holdout: 0.05,
  continuation: 96,
  warmup: 100,
  weightDecay: 0.01,
  clip: 1,
};

/**
 * Checkpoints (default checkpointEvery 500) and progress: onPrepare counts the positions
 * collected (training and held-out); onStep's loss is the sum over heads of their cross-entropy,
 * its accuracy the heads' mean top-1 accuracy on the batch.
 */
export interface MedusaTrainHooks extends CheckpointHooks, ProgressHooks<TrainStep> {}

export interface HeadAccuracy {
  top1: number;
  top5: number;
  loss: number;
}

export interface MedusaTrainResult {
  heads: MedusaHeadWeights[];
  /** The trained parameters (values, moments), e.g. to compare runs. */
  params: Param[];
  /** Steps done (== config.steps unless stopped). */
  step: number;
  stopped: boolean;
  /** Per-head held-out accuracy (empty when stopped). */
  eval: HeadAccuracy[];
  trainExamples: number;
  valExamples: number;
  dataSeconds: number;
  trainSeconds: number;
  resumedFrom?: number;
}

/** Positions with their hidden states and per-head labels. */
export interface MedusaDataset {
  count: number;
  hidden: Float32Array; // (count, dim)
  labels: Int32Array; // (count, K)
}

function argmax(a: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

/**
 * Run the target over paragraphs and collect up to `max` positions (see the file comment).
 * Deterministic for a given seed.
 */
export async function buildMedusaDataset(
  target: BuiltinTarget,
  paras: readonly string[],
  cfg: Pick<MedusaTrainConfig, "heads" | "targets" | "continuation">,
  max: number,
  seed: number,
  onProgress?: (done: number) => void,
  shouldStop?: () => boolean,
): Promise<MedusaDataset> {
  const K = cfg.heads, dim = target.hiddenSize, V = target.vocabSize;
  const e = target.engine;
  const hidden = new Float32Array(max * dim);
  const labels = new Int32Array(max * K);
  const rng = new SeededRng(seed ^ 0x2545f491);
  let count = 0;
  const ctx = target.contextSize;
  for (let pi = 0; pi < paras.length; pi++) {
    if (count >= max) break;
    if (pi % 20 === 19) {
      await new Promise((r) => setImmediate(r)); // let signals through
      if (shouldStop?.()) throw new SpecdecError("interrupted while preparing the training data (nothing to checkpoint yet)");
    }
    const para = paras[pi];
    let toks = target.tokenize(para, true);
    if (toks.length < 2) continue;
    if (cfg.targets === "greedy") {
      // A prompt of 4..96 tokens, and never the whole context: the target must have room to continue.
      const cut = Math.min(toks.length, ctx - 1, 4 + uniformInt(rng, Math.max(1, Math.min(toks.length, 96, ctx - 1) - 3)));
      const seq: number[] = toks.slice(0, cut);
      const states: Float32Array[] = []; // hidden at positions cut − 1 ..
      e.truncate(0);
      let last: { logits: Float32Array; hidden: Float32Array } | undefined;
      for (let from = 0; from < cut; from += e.maxBatch) {
        const chunk = seq.slice(from, Math.min(cut, from + e.maxBatch));
        last = e.forward(chunk, { logits: from + chunk.length === cut ? "last" : "none", hidden: true });
      }
      const n = last!.hidden.length / dim;
      states.push(last!.hidden.slice((n - 1) * dim, n * dim));
      let next = argmax(last!.logits, 0, V);
      for (let i = 0; i < cfg.continuation && seq.length < ctx; i++) {
        seq.push(next);
        if (target.eogTokens.has(next as Token) || seq.length >= ctx) break;
        const r = e.forward([next], { logits: "last", hidden: true });
        states.push(r.hidden.slice(0, dim));
        next = argmax(r.logits, 0, V);
      }
      for (let i = 0; i < states.length && count < max; i++) {
        const p = cut - 1 + i;
        if (p + K + 1 >= seq.length) break;
        hidden.set(states[i], count * dim);
        for (let k = 0; k < K; k++) labels[count * K + k] = seq[p + 2 + k];
        count++;
      }
    } else {
      if (toks.length > ctx) toks = toks.slice(0, ctx);
      const L = toks.length;
      const want = cfg.targets === "argmax" ? "all" : "none";
      const h = new Float32Array(L * dim);
      const am = new Int32Array(L);
      e.truncate(0);
      for (let from = 0; from < L; from += e.maxBatch) {
        const chunk = toks.slice(from, from + e.maxBatch);
        const r = e.forward(chunk, { logits: want, hidden: true });
        h.set(r.hidden, from * dim);
        if (want === "all") for (let t = 0; t < chunk.length; t++) am[from + t] = argmax(r.logits, t * V, V);
      }
      for (let p = 0; p + K + 1 < L && count < max; p++) {
        hidden.set(h.subarray(p * dim, (p + 1) * dim), count * dim);
        // corpus: the token at p + 2 + k; argmax: the target's guess for it from the corpus prefix.
        for (let k = 0; k < K; k++) labels[count * K + k] = cfg.targets === "argmax" ? am[p + 1 + k] : toks[p + 2 + k];
        count++;
      }
    }
    onProgress?.(count);
  }
  e.truncate(0);
  return { count, hidden: hidden.subarray(0, count * dim), labels: labels.subarray(0, count * K) };
}

/** The heads' parameters, initialised under rng: W ~ N(0, 0.02²)·, b = 0, P = the output matrix. */
function makeHeadParams(target: BuiltinTarget, cfg: MedusaTrainConfig, rng: Rng, outW: Float32Array): Param[] {
  const dim = target.hiddenSize, V = target.vocabSize;
  const params: Param[] = [];
  for (let k = 0; k < cfg.heads; k++) {
    const W = new Float32Array(dim * dim);
    for (let i = 0; i < W.length; i++) W[i] = 0.02 * standardNormal(rng);
    params.push(makeParam(`medusa.${k}.res.weight`, [dim, dim], true, W)); // (dim, dim)
    params.push(makeParam(`medusa.${k}.res.bias`, [dim], false)); // (dim)
    if (cfg.projection === "own") params.push(makeParam(`medusa.${k}.proj.weight`, [V, dim], true, outW)); // (vocab, dim)
  }
  return params;
}

/** The target's output matrix as f32, (vocab, dim). */
export function outputWeights(target: BuiltinTarget): Float32Array {
  const dim = target.hiddenSize, V = target.vocabSize;
  const out = new Float32Array(V * dim);
  for (let r = 0; r < V; r++) target.tokenMatrices().output.readRow(r, out, r * dim);
  return out;
}

/** Buffers for one batch, allocated once. */
class Workspace {
  readonly h: Float32Array; // (B, dim) the batch's hidden states
  readonly z: Float32Array; // (B, dim) pre-activation of the residual block
  readonly h2: Float32Array; // (B, dim) the block's output
  readonly logits: Float32Array; // (B, V)
  readonly dlogits: Float32Array; // (B, V)
  readonly dh2: Float32Array; // (B, dim)
  readonly dz: Float32Array; // (B, dim)
  readonly labels: Int32Array; // (B) one head's labels
  readonly picks: Int32Array; // (B) the batch's example indices
  readonly result = new Float64Array(2); // a head pass's loss and top-1 hits
  constructor(B: number, dim: number, V: number) {
    this.h = new Float32Array(B * dim);
    this.z = new Float32Array(B * dim);
    this.h2 = new Float32Array(B * dim);
    this.logits = new Float32Array(B * V);
    this.dlogits = new Float32Array(B * V);
    this.dh2 = new Float32Array(B * dim);
    this.dz = new Float32Array(B * dim);
    this.labels = new Int32Array(B);
    this.picks = new Int32Array(B);
  }
}

interface HeadView {
  W: Param;
  b: Param;
  P: Float32Array; // (V, dim)
  dP: Float32Array | null;
}

function headViews(params: readonly Param[], cfg: MedusaTrainConfig, outW: Float32Array): HeadView[] {
  const per = cfg.projection === "own" ? 3 : 2;
  return Array.from({ length: cfg.heads }, (_, k) => {
    const W = params[k * per], b = params[k * per + 1], P = per === 3 ? params[k * per + 2] : undefined;
    return { W, b, P: P ? P.value : outW, dP: P ? P.grad : null };
  });
}

/** Forward (and backward when `train`) of one head over ws.h / ws.labels; loss and top-1 hits into ws.result. */
function headPass(ws: Workspace, hv: HeadView, B: number, dim: number, V: number, train: boolean): void {
  residualForward(ws.h, hv.W.value, hv.b.value, B, dim, ws.z, ws.h2);
  linearForward(ws.h2, hv.P, null, B, dim, V, ws.logits);
  const loss = softmaxCrossEntropy(ws.logits, ws.labels, B, V, train ? ws.dlogits : null);
  let right = 0;
  for (let r = 0; r < B; r++) if (argmax(ws.logits, r * V, V) === ws.labels[r]) right++;
  if (train) {
    linearBackward(ws.h2, hv.P, ws.dlogits, B, dim, V, hv.dP, null, ws.dh2);
    residualBackward(ws.h, hv.W.value, ws.z, ws.dh2, B, dim, hv.W.grad, hv.b.grad, null, ws.dz);
  }
  ws.result[0] = loss;
  ws.result[1] = right;
}

/** Per-head held-out accuracy (top-1, top-5) and mean cross-entropy. */
function evaluateHeads(ds: MedusaDataset, heads: readonly HeadView[], dim: number, V: number, ws: Workspace, B: number): HeadAccuracy[] {
  const K = heads.length;
  const res = heads.map(() => ({ top1: 0, top5: 0, loss: 0 }));
  for (let from = 0; from < ds.count; from += B) {
    const n = Math.min(B, ds.count - from);
    ws.h.set(ds.hidden.subarray(from * dim, (from + n) * dim));
    for (let k = 0; k < K; k++) {
      for (let r = 0; r < n; r++) ws.labels[r] = ds.labels[(from + r) * K + k];
      headPass(ws, heads[k], n, dim, V, false);
      res[k].loss += ws.result[0] * n;
      for (let r = 0; r < n; r++) {
        const o = r * V, y = ws.labels[r], ly = ws.logits[o + y];
        let above = 0;
        for (let v = 0; v < V; v++) if (ws.logits[o + v] > ly || (ws.logits[o + v] === ly && v < y)) above++;
        if (above === 0) res[k].top1++;
        if (above < 5) res[k].top5++;
      }
    }
  }
  const n = Math.max(1, ds.count);
  return res.map((r) => ({ top1: r.top1 / n, top5: r.top5 / n, loss: r.loss / n }));
}

/** Train Medusa heads for `target` on `train` (held out: `val`, else the end of `train`). */
export async function trainMedusa(target: BuiltinTarget, train: TrainText, val: TrainText | undefined, config: Partial<MedusaTrainConfig>, hooks: MedusaTrainHooks = {}): Promise<MedusaTrainResult> {
  const cfg: MedusaTrainConfig = { ...MEDUSA_TRAIN_DEFAULTS, ...config };
  const dim = target.hiddenSize, V = target.vocabSize, K = cfg.heads, B = cfg.batch;
  if (!(Number.isInteger(K) && K >= 1 && K <= 64)) throw new TrainOptionError((o) => `${o("heads")} must be 1 to 64, got ${K}`);
  if (!(Number.isInteger(B) && B >= 1)) throw new TrainOptionError((o) => `${o("batch")} must be a positive integer, got ${B}`);
  if (!(cfg.holdout > 0 && cfg.holdout < 1)) throw new TrainOptionError((o) => `${o("holdout")} must be between 0 and 1 (exclusive), got ${cfg.holdout}`);
  checkCheckpointHooks(hooks);

  let trainParas = paragraphs(train.text);
  let valParas: string[];
  if (val) valParas = paragraphs(val.text);
  else ({ train: trainParas, val: valParas } = holdOut(trainParas, medusaHoldout(cfg.holdout))!);
  if (valParas.length === 0) throw new SpecdecError("the validation text is empty");

  const configHash = sha256(
    JSON.stringify({ cfg, model: target.vocab.fingerprint, dim, V, train: train.hash ?? sha256(train.text), val: val ? (val.hash ?? sha256(val.text)) : null }),
  );
  const resumed: LoadedCheckpoint | undefined = hooks.resume
    ? openResume(hooks.checkpoint!, MEDUSA_CHECKPOINT_KIND, configHash, (meta, path) => {
        const m = (meta as { model?: { fingerprint?: string; hiddenSize?: number; vocabSize?: number } }).model;
        if (m?.fingerprint !== target.vocab.fingerprint || m?.hiddenSize !== dim || m?.vocabSize !== V)
          throw new SpecdecError(`${path}: checkpoint made for another model (hidden size ${m?.hiddenSize}, vocabulary ${m?.vocabSize}; this target has ${dim}, ${V})`);
      })
    : undefined;

  // Data.
  const t0 = performance.now();
  const totalData = cfg.maxExamples + cfg.valExamples;
  const report = (done: number) => hooks.onPrepare?.({ what: "positions", done: Math.min(done, totalData), total: totalData });
  const trainSet = await buildMedusaDataset(target, trainParas, cfg, cfg.maxExamples, cfg.seed, report, hooks.shouldStop);
  if (trainSet.count === 0) throw new SpecdecError(`the corpus gave no training positions (paragraphs too short for ${K} heads)`);
  const valSet = await buildMedusaDataset(target, valParas, cfg, cfg.valExamples, cfg.seed + 1, (d) => report(trainSet.count + d), hooks.shouldStop);
  const dataSeconds = (performance.now() - t0) / 1000;

  // Model, optimizer, order.
  const rng = new SeededRng(cfg.seed);
  const outW = outputWeights(target);
  const params = makeHeadParams(target, cfg, rng, outW);
  const opt = new AdamW(params, { weightDecay: cfg.weightDecay });
  const heads = headViews(params, cfg, outW);
  const ws = new Workspace(B, dim, V);
  const N = trainSet.count;
  let { order, step, cursor, epoch } = startShuffledRun(rng, N, resumed && { path: hooks.checkpoint!, ck: resumed, params, steps: cfg.steps });
  const resumedFrom = resumed ? step : undefined;

  const save = () => {
    if (!hooks.checkpoint) return;
    const arrays = paramArrays(params);
    arrays.set("order", order);
    const meta = {
      kind: MEDUSA_CHECKPOINT_KIND,
      version: 1,
      model: { fingerprint: target.vocab.fingerprint, hiddenSize: dim, vocabSize: V, name: target.path },
      config: cfg,
      configHash,
      step,
      cursor,
      epoch,
      rngState: rng.state,
    };
    saveCheckpoint(hooks.checkpoint, meta, arrays);
  };

  // Training.
  const t1 = performance.now();
  const every = hooks.checkpointEvery ?? 500;
  let stopped = false;
  while (step < cfg.steps) {
    if (stopRequested(hooks, step)) {
      stopped = true;
      break;
    }
    const ts = performance.now();
    zeroGrads(params);
    // Gather the batch (the order is reshuffled at each epoch's end).
    const picks = ws.picks;
    for (let r = 0; r < B; r++) {
      if (cursor >= N) {
        shuffleInPlace(rng, order);
        cursor = 0;
        epoch++;
      }
      const from = (picks[r] = order[cursor++]) * dim;
      for (let i = 0; i < dim; i++) ws.h[r * dim + i] = trainSet.hidden[from + i];
    }
    let loss = 0, right = 0;
    for (let k = 0; k < K; k++) {
      for (let r = 0; r < B; r++) ws.labels[r] = trainSet.labels[picks[r] * K + k];
      headPass(ws, heads[k], B, dim, V, true);
      loss += ws.result[0];
      right += ws.result[1];
    }
    const gradNorm = clipGradNorm(params, cfg.clip);
    const lr = learningRate(step, cfg.steps, cfg.lr, Math.min(cfg.warmup, Math.floor(cfg.steps / 10)));
    opt.step(step + 1, lr);
    step++;
    hooks.onStep?.({ step, steps: cfg.steps, lr, gradNorm, loss, accuracy: right / (B * K), ms: performance.now() - ts });
    if (hooks.checkpoint && step % every === 0 && step < cfg.steps) save();
    if (step % 50 === 0) await new Promise((r) => setImmediate(r)); // let signals through
  }
  const trainSeconds = (performance.now() - t1) / 1000;
  save();

  const weights: MedusaHeadWeights[] = heads.map((h) => ({ res: h.W.value, bias: h.b.value, proj: h.dP ? h.P : undefined }));
  let evalRes: HeadAccuracy[] = [];
  if (!stopped) {
    evalRes = evaluateHeads(valSet, heads, dim, V, ws, B);
  }
  return { heads: weights, params, step, stopped, eval: evalRes, trainExamples: N, valExamples: valSet.count, dataSeconds, trainSeconds, resumedFrom };
}

