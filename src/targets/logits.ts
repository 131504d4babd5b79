// Reading a pass's logits: the argmax and the distribution, the same way on every backend.
import type { Distribution } from "../types.js";

/** Index of the largest of logits[off, off + n) (lowest index on a tie). */
export function argmaxOf(logits: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[off + i] > logits[off + best]) best = i;
  return best;
}

/** Whether logits[off, off + n) hold a NaN or +Inf (no distribution can be made of them). */
export function hasNonFinite(logits: Float32Array, off: number, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const x = logits[off + i];
    if (x !== x || x === Infinity) return true;
  }
  return false;
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
