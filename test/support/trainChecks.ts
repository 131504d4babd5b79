// Checks shared by the trainer tests.
import assert from "node:assert/strict";
import type { BuiltinTarget } from "../../src/targets/builtin.js";
import { LlamaPass, type LlamaModel } from "../../src/train/llamaModel.js";
import type { Param } from "../../src/train/optim.js";
import { standardNormal } from "../../src/sampling/rng.js";
import type { Rng } from "../../src/types.js";

/** Largest |training forward pass logit − built-in engine logit| over a token sequence. */
export function maxTrainVsEngineLogitDiff(model: LlamaModel, engine: BuiltinTarget, tokens: readonly number[]): number {
  const trainLogits = new LlamaPass(model, 1, tokens.length).forward(tokens as number[]);
  engine.engine.truncate(0);
  const engineLogits = engine.engine.forward(tokens, { logits: "all" }).logits;
  let maxDiff = 0;
  for (let i = 0; i < trainLogits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(trainLogits[i] - engineLogits[i]));
  return maxDiff;
}

/**
 * Whole-model gradient check in f32: for each parameter tensor (its gradient already computed
 * for `loss`), the directional derivative along a random direction d, by a central difference
 * with step h, must match grad · d within rel · |numeric| + abs.
 */
export function checkDirectionalGradients(params: readonly Param[], loss: () => number, rng: Rng, { h = 1e-3, rel = 0.01, abs = 2e-4 } = {}): void {
  for (const q of params) {
    const d = Float32Array.from({ length: q.value.length }, () => standardNormal(rng));
    const keep = Float32Array.from(q.value);
    let analytic = 0;
    for (let i = 0; i < d.length; i++) analytic += q.grad[i] * d[i];
    for (let i = 0; i < d.length; i++) q.value[i] = keep[i] + h * d[i];
    const up = loss();
    for (let i = 0; i < d.length; i++) q.value[i] = keep[i] - h * d[i];
    const down = loss();
    q.value.set(keep);
    const numeric = (up - down) / (2 * h);
    assert.ok(Math.abs(numeric - analytic) <= rel * Math.abs(numeric) + abs, `${q.name}: g·d ${analytic} vs numeric ${numeric}`);
  }
}

/**
 * Every entry of `analytic` (the gradient of loss() with respect to x) against a central
 * difference in f64 with h = 1e-5; both agree to ~1e-9, tolerance 1e-6 · (1 + |numeric|).
 */
export function checkGrad(name: string, x: Float64Array, analytic: Float64Array, loss: () => number): void {
  const h = 1e-5;
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    const numeric = (up - down) / (2 * h);
    assert.ok(Math.abs(numeric - analytic[i]) <= 1e-6 * (1 + Math.abs(numeric)), `${name}[${i}]: analytic ${analytic[i]} vs numeric ${numeric}`);
  }
}
