import type { Distribution, Rng, Token } from "../types.js";
import type { SamplingSettings } from "./samplingSettings.js";

/**
 * Apply sampling settings to a raw (temperature-1) distribution, in llama.cpp's default order:
 * top-k, top-p, min-p, then temperature. Writes the normalised result into `out` (may be `p`).
 * Temperature on probabilities: p^(1/T), renormalised, equals softmax(logits / T).
 * Greedy settings (T = 0) give the one-hot argmax distribution.
 * `order` is scratch of (vocab) indices, reused across calls.
 */
export function shapeDistribution(p: Distribution, s: SamplingSettings, out: Distribution = new Float32Array(p.length), order?: Uint32Array): Distribution {
  const n = p.length;
  if (s.temperature === 0) {
    const a = argmax(p);
    out.fill(0);
    out[a] = 1;
    return out;
  }
  if (out !== p) out.set(p);
  const truncates = (s.topK > 0 && s.topK < n) || s.topP < 1 || s.minP > 0;
  if (truncates) {
    // Sort indices by probability (descending) once; each filter cuts a prefix of that order.
    const idx = order && order.length === n ? order : new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => out[b] - out[a] || a - b);
    let keep = n;
    if (s.topK > 0) keep = Math.min(keep, s.topK);
    if (s.topP < 1) {
      let total = 0;
      for (let i = 0; i < keep; i++) total += out[idx[i]];
      let cum = 0;
      for (let i = 0; i < keep; i++) {
        cum += out[idx[i]];
        if (cum >= s.topP * total) {
          keep = i + 1;
          break;
        }
      }
    }
    if (s.minP > 0) {
      const floor = s.minP * out[idx[0]];
      let k = 1;
      while (k < keep && out[idx[k]] >= floor) k++;
      keep = k;
    }
    for (let i = keep; i < n; i++) out[idx[i]] = 0;
  }
  const invT = 1 / s.temperature;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = out[i] > 0 ? Math.pow(out[i], invT) : 0;
    out[i] = v;
    sum += v;
  }
  if (!(sum > 0) || !Number.isFinite(sum)) {
    // Temperature so low that every power underflowed (or overflowed): the limit is greedy.
    const a = argmax(p);
    out.fill(0);
    out[a] = 1;
    return out;
  }
  const inv = 1 / sum;
  for (let i = 0; i < n; i++) out[i] *= inv;
  return out;
}

/** Index of the largest probability; the lowest index wins a tie. */
export function argmax(p: ArrayLike<number>): Token {
  let best = 0;
  let bv = p[0];
  for (let i = 1; i < p.length; i++) {
    if (p[i] > bv) {
      bv = p[i];
      best = i;
    }
  }
  return best as Token;
}

/** Draw one token from a normalised distribution, given a uniform number u in [0, 1). */
export function sampleFrom(p: ArrayLike<number>, u: number): Token {
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += p[i];
  const target = u * sum; // tolerate rounding in the normalisation
  let cum = 0;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    if (p[i] <= 0) continue;
    cum += p[i];
    last = i;
    if (target < cum) return i as Token;
  }
  return (last < 0 ? 0 : last) as Token;
}

/** Draw from `p` with the passed-in random source. */
export function sample(p: ArrayLike<number>, rng: Rng): Token {
  return sampleFrom(p, rng.next());
}
