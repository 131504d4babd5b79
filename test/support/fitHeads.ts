// Fitting Medusa heads' projections to known sequences — the oracle heads used by tests and
// benchmarks to show what the method does when its heads are right. (Training real heads on a
// corpus is separate work.) Residual blocks are zero, so h passes through (SiLU(0) = 0), and
// head k's projection is a multiclass perceptron mapping the hidden state at each position
// to the token k + 2 positions later.

import type { BuiltinTarget } from "../../src/targets/builtin.js";
import type { Token } from "../../src/types.js";
import type { MedusaHeadWeights } from "../../src/drafters/medusaHeads.js";

/** Final hidden states of a whole sequence, (length, dim), from the engine (its cache is reset). */
export function sequenceHiddenStates(target: BuiltinTarget, seq: readonly Token[]): Float32Array {
  const e = target.engine;
  e.truncate(0);
  const hidden = new Float32Array(seq.length * target.hiddenSize);
  for (let from = 0; from < seq.length; from += e.maxBatch) {
    const chunk = seq.slice(from, from + e.maxBatch);
    hidden.set(e.forward(chunk, { logits: "none", hidden: true }).hidden, from * target.hiddenSize);
  }
  e.truncate(0);
  return hidden;
}

export interface FitExample {
  /** Prompt plus its greedy continuation. */
  seq: readonly Token[];
  /** First position whose hidden state a head sees (the last prompt token). */
  from: number;
}

/** Fit K heads; returns the weights and each head's training accuracy. */
export function fitMedusaHeads(target: BuiltinTarget, examples: readonly FitExample[], K: number, epochs = 300): { heads: MedusaHeadWeights[]; accuracy: number[] } {
  const dim = target.hiddenSize, V = target.vocabSize;
  const data = examples.map((ex) => ({ ...ex, hidden: sequenceHiddenStates(target, ex.seq) }));
  const heads: MedusaHeadWeights[] = [];
  const accuracy: number[] = [];
  for (let k = 0; k < K; k++) {
    const pairs: { h: Float32Array; y: number }[] = [];
    for (const { seq, from, hidden } of data)
      for (let p = from; p + 2 + k < seq.length; p++) pairs.push({ h: hidden.subarray(p * dim, (p + 1) * dim), y: seq[p + 2 + k] });
    const proj = new Float32Array(V * dim); // (vocab, dim)
    let errors = pairs.length;
    for (let epoch = 0; epoch < epochs && errors > 0; epoch++) {
      errors = 0;
      for (const { h, y } of pairs) {
        const best = bestRow(proj, V, dim, h);
        if (best === y) continue;
        errors++;
        for (let i = 0; i < dim; i++) {
          proj[y * dim + i] += h[i];
          proj[best * dim + i] -= h[i];
        }
      }
    }
    let right = 0;
    for (const { h, y } of pairs) if (bestRow(proj, V, dim, h) === y) right++;
    accuracy.push(pairs.length ? right / pairs.length : 0);
    heads.push({ res: new Float32Array(dim * dim), bias: new Float32Array(dim), proj });
  }
  return { heads, accuracy };
}

function bestRow(m: Float32Array, rows: number, dim: number, h: Float32Array): number {
  let best = 0, bestScore = -Infinity;
  for (let v = 0; v < rows; v++) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += m[v * dim + i] * h[i];
    if (s > bestScore) [best, bestScore] = [v, s];
  }
  return best;
}
