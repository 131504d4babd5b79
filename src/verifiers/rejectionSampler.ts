import { treeChildren, type DraftTree } from "../drafters/draftTree.js";
import { SpecdecError } from "../errors.js";
import { sample, sampleFrom } from "../sampling/shapeDistribution.js";
import type { Distribution, Rng } from "../types.js";
import type { TargetOutputs, Verdict, Verifier } from "./verifier.js";

/**
 * Lossless multi-draft speculative sampling over a tree (SpecInfer's multi-step speculative
 * sampling, Miao et al. 2024; "recursive rejection sampling", Yang et al. 2024 / Jeon et al. 2024).
 * On a chain (one child per node) it is speculative sampling as in Leviathan et al. 2023 and
 * Chen et al. 2023: keep x with probability min(1, p(x)/q(x)), else draw from norm(max(0, p - q)).
 *
 * Start at the root with p = the target's distribution there. At a node, try its children
 * x_1, x_2, ... in index order, child i with its recorded drafter distribution q_i:
 *  - accepted: x_i is kept with probability min(1, p(x_i) / q_i(x_i)); verification moves to
 *    that child with p = the target's distribution after it (fresh, not residualised);
 *  - on rejection, p ← norm(max(0, p - q_i)) and the next child is tried against that p;
 *  - recovered: when every child is rejected, a token is drawn from the final residual p;
 *  - bonus: when an accepted node has no children, one more token is drawn from p after it.
 * A child without q was proposed deterministically: q_i is one-hot, so it is kept with
 * probability p(x_i) (under the current, possibly residualised p) and on rejection p ← p with
 * x_i removed, renormalised. Duplicate siblings follow the same rule: a second deterministic
 * copy of a rejected token has p = 0 and is always rejected (leaving p unchanged); with q
 * a rejected token had p(x) < q(x), so a copy sampled from the same q has residual p = 0 and is
 * always rejected too. Either way a duplicate's subtree is never reached. Deterministic
 * duplicates can simply be merged by the drafter (the tree stays a function of the context);
 * sampled siblings must be passed as drawn — dropping, re-drawing or reordering them changes
 * the law of the later siblings, which is then no longer their recorded q.
 *
 * Exactness. The committed tokens are distributed exactly as if sampled from the target one at
 * a time when, for every node, each child's recorded q_i is the distribution that child's token
 * was drawn from *given the path to it and the tokens of its earlier siblings* (and of nothing
 * the verifier decides). Proof sketch, by induction over the siblings from last to first: given
 * the earlier siblings, x_i ~ q_i, so child i is kept with token x with probability
 * min(p, q_i)(x), and rejected with probability Σ max(0, p - q_i), after which the rest (later
 * siblings, or the recovered draw) yields norm(max(0, p - q_i)) by induction — and that
 * residual does not depend on the value of x_i. The sum is p. Below an accepted child the same
 * argument applies with that child's own p. This covers the trees our drafters produce:
 *  (i)  deterministic children (top-k candidates, prompt-lookup continuations, Medusa/EAGLE trees
 *       with greedy candidate selection): q_i is one-hot at a token fixed by the context;
 *  (ii) children sampled i.i.d. (with replacement) from one q: every q_i = q;
 * and also mixtures of the two (e.g. the drafter's argmax plus samples drawn independently of
 * it), siblings sampled independently from different q_i, and sampling without replacement
 * *when q_i records the renormalised leftover* (q with the earlier siblings' tokens removed).
 * It is NOT exact — and nothing here can detect it — when a recorded q is not that conditional
 * law: siblings drawn without replacement (or re-drawn on a duplicate) but all recorded with
 * the original q; i.i.d. samples sorted (say, most probable first) or de-duplicated after
 * drawing; a sibling whose draw depends on a later sibling; top-k candidates of a q recorded as
 * if sampled from q. Pass a tree without q only if its tokens are fixed by the context (a
 * deterministic function of it), otherwise with each sibling's conditional q, in draw order.
 */
export class RejectionSampler implements Verifier {
  readonly name = "rejection-sampling";
  readonly reads = "probabilities";
  // (vocab) scratch: the current residual, unnormalised (its sum is tracked), and the next one.
  private cur = new Float64Array(0);
  private nxt = new Float64Array(0);

  verify(tree: DraftTree, out: TargetOutputs, rng: Rng): Verdict {
    const all = out.p;
    if (all.length !== tree.tokens.length + 1) throw new SpecdecError(`rejection sampling: ${tree.tokens.length} nodes need ${tree.tokens.length + 1} target distributions, got ${all.length}`);
    const V = all[0].length;
    if (this.cur.length !== V) {
      this.cur = new Float64Array(V);
      this.nxt = new Float64Array(V);
    }
    const { roots, children } = treeChildren(tree);
    const path: number[] = [];
    let p = all[0];
    let kids = roots;
    for (;;) {
      if (kids.length === 0) return { path, token: sample(p, rng), kind: "bonus" };
      const next = this.tryChildren(tree, kids, p, rng);
      if (next < 0) return { path, token: sampleFrom(this.cur, rng.next()), kind: "recovered" };
      path.push(next);
      p = all[next + 1];
      kids = children[next];
    }
  }

  /** The accepted child, or -1 with the final residual left in `this.cur`. */
  private tryChildren(tree: DraftTree, kids: readonly number[], p: Distribution, rng: Rng): number {
    let residual = false; // false: the current p is `p` itself (nothing rejected yet)
    let sum = 1;
    for (const c of kids) {
      const x = tree.tokens[c];
      const q = tree.q?.[c];
      const qx = q ? q[x] : 1;
      const px = residual ? this.cur[x] / sum : p[x];
      // Keep x with probability min(1, p(x)/q(x)); u·q < p avoids dividing by zero.
      if (rng.next() * qx < px) return c;
      if (!residual) {
        const r = this.cur;
        sum = 0;
        for (let j = 0; j < p.length; j++) sum += r[j] = p[j];
        residual = true;
      }
      sum = q ? this.subtract(q, sum) : this.remove(x, sum);
    }
    return -1;
  }

  /** cur ← max(0, cur/sum - q); returns the new sum. */
  private subtract(q: Distribution, sum: number): number {
    const r = this.cur;
    const out = this.nxt;
    const inv = 1 / sum;
    let s = 0;
    for (let j = 0; j < r.length; j++) {
      const d = r[j] * inv - q[j];
      s += out[j] = d > 0 ? d : 0;
    }
    // p == q up to rounding: rejection had probability ~0 and leaves no residual; keep p as it is.
    if (!(s > 0)) return sum;
    this.nxt = r;
    this.cur = out;
    return s;
  }

  /** cur(x) ← 0 (one-hot q); returns the new sum. */
  private remove(x: number, sum: number): number {
    const s = sum - this.cur[x];
    // p was one-hot at x up to rounding: rejection had probability ~0; keep p as it is.
    if (!(s > 1e-12 * sum)) return sum;
    this.cur[x] = 0;
    return s;
  }
}
