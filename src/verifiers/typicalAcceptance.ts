import { treeChildren, type DraftTree } from "../drafters/draftTree.js";
import type { Distribution, Token } from "../types.js";
import type { TargetOutputs, Verdict, Verifier } from "./verifier.js";

export interface TypicalAcceptanceOptions {
  /** Hard floor of the acceptance threshold. Default 0.09 (Medusa's posterior_threshold). */
  epsilon?: number;
  /** Scale of the entropy-dependent threshold. Default 0.3 (Medusa's posterior_alpha, √epsilon). */
  alpha?: number;
}

/**
 * LOSSY: Medusa's typical acceptance (Cai et al. 2024, §2.3.1). A guess x is accepted when the
 * target gives it p(x) > min(epsilon, alpha · exp(−H(p))): plausible tokens pass even when
 * they are not what the target would have sampled, so the output no longer follows the
 * target's distribution. The token after the accepted path is the target's argmax.
 * Opt-in only (`--acceptance typical`), and labelled lossy wherever it is offered.
 */
export class TypicalAcceptanceVerifier implements Verifier {
  readonly name = "typical-acceptance (lossy)";
  readonly reads = "probabilities";
  readonly lossy = true;
  readonly epsilon: number;
  readonly alpha: number;

  constructor(options: TypicalAcceptanceOptions = {}) {
    this.epsilon = options.epsilon ?? 0.09;
    this.alpha = options.alpha ?? 0.3;
  }

  verify(tree: DraftTree, out: TargetOutputs): Verdict {
    const { roots, children } = treeChildren(tree);
    const path: number[] = [];
    let slot = 0;
    let p = out.p[0];
    let kids = roots;
    for (;;) {
      const threshold = Math.min(this.epsilon, this.alpha * Math.exp(-entropy(p)));
      // Among the acceptable children, follow the one the target finds most likely.
      let best = -1;
      for (const c of kids) if (p[tree.tokens[c]] > threshold && (best < 0 || p[tree.tokens[c]] > p[tree.tokens[best]])) best = c;
      if (best < 0) return { path, token: out.argmax[slot] as Token, kind: kids.length > 0 ? "recovered" : "bonus" };
      path.push(best);
      slot = best + 1;
      p = out.p[slot];
      kids = children[best];
    }
  }
}

function entropy(p: Distribution): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) h -= p[i] * Math.log(p[i]);
  return h;
}
