import type { Draft } from "../drafter.js";
import { sample, sampleFrom } from "../sampling/shapeDistribution.js";
import type { Distribution, Rng } from "../types.js";
import type { Verdict, Verifier } from "../verifier.js";

/**
 * Lossless speculative sampling (Leviathan et al. 2023; Chen et al. 2023).
 *
 * For draft position i with target distribution p and drafter distribution q:
 *  - accepted: the draft token x is kept with probability min(1, p(x) / q(x));
 *  - recovered: at the first rejection, a token is drawn from norm(max(0, p - q)) instead,
 *    and the rest of the draft is discarded;
 *  - bonus: when every draft token is kept, one more token is drawn from p after the draft.
 * The committed tokens are then distributed exactly as if sampled from p one at a time.
 * A draft token without q was proposed deterministically: q is one-hot, so it is kept with
 * probability p(x), and the residual is p with x removed.
 */
export class RejectionSampler implements Verifier {
  readonly name = "rejection-sampling";
  private residual = new Float32Array(0); // (vocab) scratch for norm(max(0, p - q))

  verify(draft: Draft, p: readonly Distribution[], rng: Rng): Verdict {
    const k = draft.tokens.length;
    for (let i = 0; i < k; i++) {
      const x = draft.tokens[i];
      const pi = p[i];
      const qi = draft.q?.[i];
      const qx = qi ? qi[x] : 1;
      // Keep x with probability min(1, p(x)/q(x)); u < p/q avoids a division by zero.
      if (rng.next() * qx < pi[x]) continue;
      return { accepted: i, token: this.recover(pi, qi, x, rng), kind: "recovered" };
    }
    return { accepted: k, token: sample(p[k], rng), kind: "bonus" };
  }

  private recover(p: Distribution, q: Distribution | undefined, x: number, rng: Rng) {
    if (this.residual.length !== p.length) this.residual = new Float32Array(p.length);
    const r = this.residual;
    let sum = 0;
    if (q) {
      for (let j = 0; j < p.length; j++) {
        const d = p[j] - q[j];
        r[j] = d > 0 ? d : 0;
        sum += r[j];
      }
    } else {
      r.set(p);
      r[x] = 0;
      for (let j = 0; j < p.length; j++) sum += r[j];
    }
    // p == q up to rounding leaves no residual mass; then any draw from p is exact.
    if (!(sum > 0)) return sample(p, rng);
    return sampleFrom(r, rng.next());
  }
}
