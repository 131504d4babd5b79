// Parameters, AdamW (decoupled weight decay, Loshchilov & Hutter), a linear warm-up + cosine
// learning-rate schedule and global-norm gradient clipping. All state is Float32Arrays allocated
// once; a step allocates nothing.

/** A trainable tensor: value, gradient and AdamW's moments, all of the same length. */
export interface Param {
  readonly name: string;
  readonly shape: readonly number[];
  readonly value: Float32Array; // (shape)
  readonly grad: Float32Array; // (shape)
  readonly m: Float32Array; // (shape) first moment
  readonly v: Float32Array; // (shape) second moment
  /** Weight decay applies (matrices: yes; biases: no). */
  readonly decay: boolean;
}

export function makeParam(name: string, shape: readonly number[], decay: boolean, init?: Float32Array): Param {
  const n = shape.reduce((a, b) => a * b, 1);
  if (init && init.length !== n) throw new RangeError(`${name}: initial value has ${init.length} elements, shape [${shape.join(", ")}] needs ${n}`);
  return { name, shape, value: init ? Float32Array.from(init) : new Float32Array(n), grad: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), decay };
}

export function zeroGrads(params: readonly Param[]): void {
  for (let j = 0; j < params.length; j++) params[j].grad.fill(0);
}

/** Scale all gradients so their global L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: readonly Param[], maxNorm: number): number {
  let sq = 0;
  for (let j = 0; j < params.length; j++) {
    const g = params[j].grad;
    for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  }
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (let j = 0; j < params.length; j++) {
      const g = params[j].grad;
      for (let i = 0; i < g.length; i++) g[i] *= s;
    }
  }
  return norm;
}

export interface AdamWOptions {
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 0.01
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(
    readonly params: readonly Param[],
    o: AdamWOptions = {},
  ) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
  }

  /** Update step number `t` (1-based, for bias correction) at learning rate lr. */
  step(t: number, lr: number): void {
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 / (1 - Math.pow(b1, t)), c2 = 1 / (1 - Math.pow(b2, t));
    for (let j = 0; j < this.params.length; j++) {
      const p = this.params[j];
      const w = p.value, g = p.grad, m = p.m, v = p.v;
      const decay = p.decay ? 1 - lr * this.weightDecay : 1;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] = w[i] * decay - (lr * (m[i] * c1)) / (Math.sqrt(v[i] * c2) + eps);
      }
    }
  }
}

/**
 * Learning rate at update `step` (0-based) of `total`: linear warm-up from 0 over `warmup`
 * steps to `peak`, then cosine decay to `peak × minRatio` at the last step.
 */
export function learningRate(step: number, total: number, peak: number, warmup: number, minRatio = 0.1): number {
  if (warmup > 0 && step < warmup) return (peak * (step + 1)) / warmup;
  const span = Math.max(1, total - warmup - 1);
  const t = Math.min(1, Math.max(0, (step - warmup) / span));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
}
