// Training an EAGLE head (src/drafters/eagleHeads.ts) by self-distillation on the built-in engine.
//
// Data. The corpus is read as paragraphs (one per line), each a sequence of its own with BOS as
// the generate command's prompts are. A prefix of 4–96 tokens (cut at random under the data
// seed, as for the Medusa heads) is the prompt; the target continues it greedily for up to
// `continuation` tokens (ending at an end-of-generation token). The target's final hidden state
// is kept at every position, prompt and continuation: entry j of a sequence is (f_j, t_{j+1}) →
// (f_{j+1}, p_{j+1}). Inside the continuation t_{j+2} is exactly the target's greedy choice, which
// is what a draft must match at temperature 0; the prompt part teaches the head to read a
// context it did not write. The features are computed once, before training; a resumed run
// computes them again (the engine is deterministic, so they are the same bits).
//
// Model and loss: eagleModel.ts (the head unrolled over `unroll` drafting steps; smooth-L1 on
// the features plus KL to the target's next-token distribution, as EAGLE). AdamW, warm-up +
// cosine, global-norm clipping; batches of whole sequences from a seeded shuffle, so a run is
// deterministic under its seed and resumes bit-identically from a checkpoint (parameters, AdamW
// moments, the shuffle order and cursor, the RNG state; tied to the target and a hash of the
// data and of every option that changes the result).

import type { BuiltinTarget } from "../targets/builtin.js";
import { SpecdecError } from "../errors.js";
import type { Token } from "../types.js";
import type { EagleShape } from "../drafters/eagleHeads.js";
import { checkEagleShape } from "../drafters/eagleHeads.js";
import { SeededRng, shuffleInPlace, uniformInt } from "../sampling/rng.js";
import { checkCheckpointHooks, openResume, paramArrays, startShuffledRun, saveCheckpoint, stopRequested, type CheckpointHooks } from "./checkpoint.js";
import { holdOut, medusaHoldout, paragraphs, type TrainText } from "./corpus.js";
import { targetIdentity } from "./draftTrainer.js";
import { EagleModel, EaglePass, type EagleBatch, type EagleLossConfig } from "./eagleModel.js";
import { TrainOptionError } from "./optionError.js";
import { AdamW, clipGradNorm, learningRate, zeroGrads } from "./optim.js";
import type { ProgressHooks } from "./progress.js";
import { sha256 } from "./sha256.js";

export interface EagleTrainConfig extends EagleLossConfig {
  /** Decoder blocks in the head (EAGLE: 1). */
  layers: number;
  /** Attention heads of the head; 0 = the target's head count. */
  heads: number;
  /** Key/value heads; 0 = as many as `heads`. */
  kvHeads: number;
  /** Feed-forward width; 0 = the target's. */
  hidden: number;
  /** Drafting steps unrolled in training (1 = EAGLE-1's teacher forcing on true features). */
  unroll: number;
  /** Uniform noise U(−noise, noise) added to the true input features (EAGLE-1's augmentation; 0 = none). */
  noise: number;
  /** Optimizer updates. */
  steps: number;
  /** Sequences per update. */
  batch: number;
  /** Peak learning rate. */
  lr: number;
  seed: number;
  /** Most training sequences prepared from the corpus. */
  sequences: number;
  /** Most held-out sequences evaluated. */
  valSequences: number;
  /** Fraction of the corpus's paragraphs (its end) held out when there is no separate validation text. */
  holdout: number;
  /** Greedy tokens generated after each prompt. */
  continuation: number;
  /** Drafting depth evaluated on the held-out sequences. */
  evalDepth: number;
  warmup: number;
  weightDecay: number;
  clip: number;
}

export const EAGLE_TRAIN_DEFAULTS: EagleTrainConfig = {
  layers: 1,
  heads: 0,
  kvHeads: 0,
  hidden: 0,
  unroll: 3,
  noise: 0,
  wReg: 1,
  wCls: 1,
  decay: 1,
  steps: 1500,
  batch: 8,
  lr: 1e-2,
  seed: 0,
  sequences: 4000,
  valSequences: 64,
  holdout: 0.05,
  continuation: 96,
  evalDepth: 6,
  warmup: 50,
  weightDecay: 0.01,
  clip: 1,
};

export const EAGLE_CHECKPOINT_KIND = "eagle-head";

/** Sequences with the target's features at every position but the last. */
export interface EagleData {
  readonly count: number;
  readonly tokOff: Int32Array; // (count) first token of each sequence in `tokens`
  readonly len: Int32Array; // (count) entries of each sequence: its tokens − 2
  /** First continuation entry of each sequence (the last prompt token's entry). */
  readonly from: Int32Array; // (count)
  readonly tokens: Int32Array; // (Σ tokens)
  readonly features: Float32Array; // (Σ (tokens − 1), dim): row tokOff[i] − i of sequence i is f_0
  readonly maxLen: number;
}

export interface HeldOutDepth {
  /** Drafting depth d (1 = the tokens right after the committed ones). */
  depth: number;
  /** Top-1 agreement with the target's greedy token at depth d (earlier tokens the true ones). */
  top1: number;
  /** The target's token among the head's top 4. */
  top4: number;
  /** Fraction of positions where a chain of the head's top-1 guesses is right up to depth d. */
  chain: number;
  positions: number;
}

/**
 * Checkpoints (default checkpointEvery 200) and progress: onPrepare counts the sequences prepared
 * (training and held-out); onStep's loss is the whole unrolled loss, its accuracy stream 0's top-1
 * agreement with the target, its tokens the step's positions.
 */
export interface EagleTrainHooks extends CheckpointHooks, ProgressHooks {}

export interface EagleTrainResult {
  model: EagleModel;
  /** Steps done (== config.steps unless stopped). */
  step: number;
  stopped: boolean;
  /** Per-depth held-out accuracy (empty when stopped). */
  eval: HeldOutDepth[];
  trainSequences: number;
  trainEntries: number;
  valSequences: number;
  dataSeconds: number;
  trainSeconds: number;
  resumedFrom?: number;
}

/** The head's shape for a target under a config (0 = the target's value). */
export function eagleShapeFor(target: BuiltinTarget, cfg: Pick<EagleTrainConfig, "layers" | "heads" | "kvHeads" | "hidden">): EagleShape {
  const hp = target.hparams;
  const heads = cfg.heads || hp.nHeads;
  const shape: EagleShape = { dim: hp.dim, vocabSize: hp.vocabSize, layers: cfg.layers, heads, kvHeads: cfg.kvHeads || heads, hidden: cfg.hidden || hp.hiddenDim, ropeBase: 10000, normEps: hp.normEps };
  checkEagleShape(shape, "EAGLE head");
  return shape;
}

/**
 * Run the target over paragraphs (see the file comment); up to `max` sequences. Deterministic
 * for a given seed; the target is left with an empty cache.
 */
export async function buildEagleData(
  target: BuiltinTarget,
  paras: readonly string[],
  continuation: number,
  max: number,
  seed: number,
  onProgress?: (sequences: number) => void,
  shouldStop?: () => boolean,
): Promise<EagleData> {
  const dim = target.hiddenSize, V = target.vocabSize, e = target.engine, ctx = target.contextSize;
  const rng = new SeededRng(seed ^ 0x5eed_ea61);
  const seqTokens: Int32Array[] = [], seqFeatures: Float32Array[] = [], from: number[] = [];
  for (let pi = 0; pi < paras.length && seqTokens.length < max; pi++) {
    if (pi % 20 === 19) {
      await new Promise((r) => setImmediate(r)); // let signals through
      if (shouldStop?.()) throw new SpecdecError("interrupted while preparing the training data (nothing to checkpoint yet)");
    }
    const toks = target.tokenize(paras[pi], true);
    if (toks.length < 2) continue;
    const cut = Math.min(toks.length, ctx - 1, 4 + uniformInt(rng, Math.max(1, Math.min(toks.length, 96, ctx - 1) - 3)));
    const seq: number[] = toks.slice(0, cut);
    const feats: Float32Array[] = [];
    e.truncate(0);
    let logits: Float32Array | undefined;
    for (let at = 0; at < cut; at += e.maxBatch) {
      const chunk = seq.slice(at, Math.min(cut, at + e.maxBatch));
      const r = e.forward(chunk, { logits: at + chunk.length === cut ? "last" : "none", hidden: true });
      feats.push(r.hidden.slice());
      logits = r.logits;
    }
    let next = argmax(logits!, V);
    for (let i = 0; i < continuation && seq.length < ctx; i++) {
      seq.push(next);
      if (target.eogTokens.has(next as Token) || seq.length >= ctx || i === continuation - 1) break;
      const r = e.forward([next], { logits: "last", hidden: true });
      feats.push(r.hidden.slice(0, dim));
      next = argmax(r.logits, V);
    }
    // Features for positions 0 .. seq.length − 2 (the last token was never run).
    if (seq.length < 3) continue;
    const f = new Float32Array((seq.length - 1) * dim);
    let o = 0;
    for (const part of feats) {
      f.set(part.subarray(0, Math.min(part.length, f.length - o)), o);
      o += part.length;
    }
    seqTokens.push(Int32Array.from(seq));
    seqFeatures.push(f);
    from.push(cut - 1);
    onProgress?.(seqTokens.length);
  }
  e.truncate(0);
  const count = seqTokens.length;
  const tokOff = new Int32Array(count), len = new Int32Array(count);
  let nTok = 0, maxLen = 0;
  seqTokens.forEach((t, i) => {
    tokOff[i] = nTok;
    nTok += t.length;
    len[i] = t.length - 2;
    maxLen = Math.max(maxLen, len[i]);
  });
  const tokens = new Int32Array(nTok), features = new Float32Array((nTok - count) * dim);
  seqTokens.forEach((t, i) => {
    tokens.set(t, tokOff[i]);
    features.set(seqFeatures[i], (tokOff[i] - i) * dim);
  });
  return { count, tokOff, len, from: Int32Array.from(from), tokens, features, maxLen };
}

function argmax(a: Float32Array, n: number, off = 0): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + best]) best = i;
  return best;
}

/** Fills EagleBatch arrays from sequences of an EagleData. */
class BatchBuilder {
  readonly off: Int32Array; // (B)
  readonly len: Int32Array; // (B)
  readonly tokens: Int32Array; // (B·maxLen)
  readonly feat: Float32Array; // (B·maxLen, dim)
  readonly next: Float32Array; // (B·maxLen, dim)

  constructor(B: number, maxLen: number, private readonly dim: number) {
    this.off = new Int32Array(B);
    this.len = new Int32Array(B);
    this.tokens = new Int32Array(B * maxLen);
    this.feat = new Float32Array(B * maxLen * dim);
    this.next = new Float32Array(B * maxLen * dim);
  }

  /** The batch of sequences `picks` of `data`. */
  build(data: EagleData, picks: ArrayLike<number>): EagleBatch {
    const dim = this.dim;
    let rows = 0;
    for (let b = 0; b < picks.length; b++) {
      const i = picks[b], T = data.len[i], t0 = data.tokOff[i], f0 = (t0 - i) * dim;
      this.off[b] = rows;
      this.len[b] = T;
      this.tokens.set(data.tokens.subarray(t0 + 1, t0 + 1 + T), rows);
      this.feat.set(data.features.subarray(f0, f0 + T * dim), rows * dim);
      this.next.set(data.features.subarray(f0 + dim, f0 + (T + 1) * dim), rows * dim);
      rows += T;
    }
    const B = picks.length;
    return { off: this.off.subarray(0, B), len: this.len.subarray(0, B), rows, tokens: this.tokens, feat: this.feat, next: this.next };
  }
}

/** Held-out accuracy per drafting depth, from the continuation part of each sequence (see HeldOutDepth). */
export function evaluateEagle(model: EagleModel, data: EagleData, depth: number, batch: number): HeldOutDepth[] {
  const V = model.shape.vocabSize, dim = model.shape.dim;
  const B = Math.max(1, Math.min(batch, data.count));
  const pass = new EaglePass(model, depth, B * data.maxLen, data.maxLen);
  const builder = new BatchBuilder(B, data.maxLen, dim);
  const top1 = new Float64Array(depth), top4 = new Float64Array(depth), chain = new Float64Array(depth), n = new Float64Array(depth), nChain = new Float64Array(depth);
  for (let from = 0; from < data.count; from += B) {
    const picks = Array.from({ length: Math.min(B, data.count - from) }, (_, i) => from + i);
    const b = builder.build(data, picks);
    pass.targetDistributions(b);
    pass.forward(b);
    picks.forEach((seq, bi) => {
      const o = b.off[bi], T = b.len[bi], start = data.from[seq];
      // right[s][j]: stream s's top-1 at entry j is the target's token (depth s + 1, drafted from committed entry j − s).
      const right: Uint8Array[] = [];
      for (let s = 0; s < depth; s++) {
        right.push(new Uint8Array(T));
        const L = pass.acts[s].logits;
        for (let j = s; j < T; j++) {
          const r = o + j, want = pass.targetToken(r), ly = L[r * V + want];
          let above = 0;
          for (let v = 0; v < V && above < 4; v++) if (L[r * V + v] > ly || (L[r * V + v] === ly && v < want)) above++;
          right[s][j] = above === 0 ? 1 : 0;
          // Only drafts that start inside the continuation (from the last prompt token on) count.
          if (j - s < start) continue;
          n[s]++;
          if (above === 0) top1[s]++;
          if (above < 4) top4[s]++;
        }
      }
      for (let c = start; c < T; c++) {
        let ok = true;
        for (let s = 0; s < depth && c + s < T; s++) {
          ok &&= right[s][c + s] === 1;
          nChain[s]++;
          if (ok) chain[s]++;
        }
      }
    });
  }
  return Array.from({ length: depth }, (_, s) => ({ depth: s + 1, top1: top1[s] / Math.max(1, n[s]), top4: top4[s] / Math.max(1, n[s]), chain: chain[s] / Math.max(1, nChain[s]), positions: n[s] }));
}

/** Train an EAGLE head for `target` on `train` (held out: `val`, else the end of `train`). */
export async function trainEagle(target: BuiltinTarget, train: TrainText, val: TrainText | undefined, config: Partial<EagleTrainConfig>, hooks: EagleTrainHooks = {}): Promise<EagleTrainResult> {
  const cfg: EagleTrainConfig = { ...EAGLE_TRAIN_DEFAULTS, ...config };
  const positive = (x: number) => Number.isInteger(x) && x >= 1;
  if (!positive(cfg.batch)) throw new TrainOptionError((o) => `${o("batch")} must be a positive integer, got ${cfg.batch}`);
  if (!positive(cfg.unroll) || cfg.unroll > 16) throw new TrainOptionError((o) => `${o("unroll")} must be 1 to 16, got ${cfg.unroll}`);
  if (!positive(cfg.evalDepth) || cfg.evalDepth > 16) throw new TrainOptionError((o) => `${o("evalDepth")} must be 1 to 16, got ${cfg.evalDepth}`);
  if (!(cfg.holdout > 0 && cfg.holdout < 1)) throw new TrainOptionError((o) => `${o("holdout")} must be between 0 and 1 (exclusive), got ${cfg.holdout}`);
  if (!(cfg.noise >= 0 && cfg.noise < 10)) throw new TrainOptionError((o) => `${o("noise")} must be at least 0 (and below 10), got ${cfg.noise}`);
  if (!(cfg.wReg >= 0 && cfg.wCls >= 0 && cfg.wReg + cfg.wCls > 0)) throw new TrainOptionError((o) => `the loss weights must be non-negative and not both 0 (${o("wReg")} ${cfg.wReg}, ${o("wCls")} ${cfg.wCls})`);
  checkCheckpointHooks(hooks);
  const shape = eagleShapeFor(target, cfg);
  const dim = shape.dim, V = shape.vocabSize, B = cfg.batch;

  // The held-out paragraphs as Medusa's trainer holds them out (the same tail of the family's corpus).
  let trainParas = paragraphs(train.text);
  let valParas: string[];
  if (val) valParas = paragraphs(val.text);
  else ({ train: trainParas, val: valParas } = holdOut(trainParas, medusaHoldout(cfg.holdout))!);
  if (valParas.length === 0) throw new SpecdecError("the validation text is empty");

  const identity = targetIdentity(target);
  const configHash = sha256(JSON.stringify({ cfg, shape, target: identity, train: train.hash ?? sha256(train.text), val: val ? (val.hash ?? sha256(val.text)) : null }));
  const resumed = hooks.resume
    ? openResume(hooks.checkpoint!, EAGLE_CHECKPOINT_KIND, configHash, (meta, path) => {
        if ((meta as { target?: unknown }).target !== identity) throw new SpecdecError(`${path}: checkpoint made for another target model`);
      })
    : undefined;

  // Data.
  const t0 = performance.now();
  const total = cfg.sequences + cfg.valSequences;
  const report = (done: number) => hooks.onPrepare?.({ what: "sequences", done: Math.min(done, total), total });
  const data = await buildEagleData(target, trainParas, cfg.continuation, cfg.sequences, cfg.seed, report, hooks.shouldStop);
  if (data.count === 0) throw new SpecdecError("the corpus gave no training sequences (paragraphs too short)");
  const valData = await buildEagleData(target, valParas, cfg.continuation, cfg.valSequences, cfg.seed + 1, (d) => report(data.count + d), hooks.shouldStop);
  const dataSeconds = (performance.now() - t0) / 1000;

  // Model, optimizer, order.
  const rng = new SeededRng(cfg.seed);
  const { embedding, output } = tokenMatricesF32(target);
  const model = new EagleModel(shape, rng, embedding, output);
  const params = model.params;
  const opt = new AdamW(params, { weightDecay: cfg.weightDecay });
  const N = data.count;
  let { order, step, cursor, epoch } = startShuffledRun(rng, N, resumed && { path: hooks.checkpoint!, ck: resumed, params, steps: cfg.steps });
  const resumedFrom = resumed ? step : undefined;
  const save = () => {
    if (!hooks.checkpoint) return;
    const arrays = paramArrays(params);
    arrays.set("order", order);
    saveCheckpoint(hooks.checkpoint, { kind: EAGLE_CHECKPOINT_KIND, version: 1, target: identity, model: { fingerprint: target.vocab.fingerprint, hiddenSize: dim, vocabSize: V, name: target.path }, config: cfg, configHash, step, cursor, epoch, rngState: rng.state }, arrays);
  };

  // Training.
  const pass = new EaglePass(model, cfg.unroll, B * data.maxLen, data.maxLen);
  const builder = new BatchBuilder(B, data.maxLen, dim);
  const picks = new Int32Array(B);
  const noise = cfg.noise > 0 ? () => cfg.noise * (2 * rng.next() - 1) : undefined;
  const t1 = performance.now();
  const every = hooks.checkpointEvery ?? 200;
  let stopped = false;
  while (step < cfg.steps) {
    if (stopRequested(hooks, step)) {
      stopped = true;
      break;
    }
    const ts = performance.now();
    for (let r = 0; r < B; r++) {
      if (cursor >= N) {
        shuffleInPlace(rng, order);
        cursor = 0;
        epoch++;
      }
      picks[r] = order[cursor++];
    }
    const batch = builder.build(data, picks);
    zeroGrads(params);
    pass.targetDistributions(batch);
    pass.forward(batch, noise);
    const loss = pass.loss(batch, cfg, true);
    pass.backward();
    const gradNorm = clipGradNorm(params, cfg.clip);
    const lr = learningRate(step, cfg.steps, cfg.lr, Math.min(cfg.warmup, Math.floor(cfg.steps / 10)));
    opt.step(step + 1, lr);
    step++;
    hooks.onStep?.({ step, steps: cfg.steps, lr, gradNorm, loss: loss.total, accuracy: loss.streams[0].agree, ms: performance.now() - ts, tokens: batch.rows });
    if (hooks.checkpoint && step % every === 0 && step < cfg.steps) save();
    await new Promise((r) => setImmediate(r)); // let signals through
  }
  const trainSeconds = (performance.now() - t1) / 1000;
  save();
  const evalRes = stopped ? [] : evaluateEagle(model, valData, cfg.evalDepth, B);
  let trainEntries = 0;
  for (let i = 0; i < N; i++) trainEntries += data.len[i];
  return { model, step, stopped, eval: evalRes, trainSequences: N, trainEntries, valSequences: valData.count, dataSeconds, trainSeconds, resumedFrom };
}

/** The target's embedding and output matrices as f32, (vocab, dim) each. */
function tokenMatricesF32(target: BuiltinTarget): { embedding: Float32Array; output: Float32Array } {
  const dim = target.hiddenSize, V = target.vocabSize, m = target.tokenMatrices();
  const read = (mat: typeof m.output) => {
    const out = new Float32Array(V * dim);
    for (let r = 0; r < V; r++) mat.readRow(r, out, r * dim);
    return out;
  };
  const embedding = read(m.embedding);
  return { embedding, output: m.output === m.embedding ? embedding : read(m.output) };
}
