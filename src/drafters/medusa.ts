import type { Capability } from "../targets/target.js";
import type { Token } from "../types.js";
import { compileTreeChoices, NO_DRAFT, ROOT, type DraftTree, type TreeChoices, type TreeShape } from "./draftTree.js";
import type { DraftBudget, Drafter, VerifiedPass } from "./drafter.js";
import { MedusaHeads } from "./medusaHeads.js";
import type { MethodDescriptor } from "./method.js";

/**
 * The default candidate space: the top-4 guesses of head 1, the top-3 of head 2 below each, the
 * top-2 of heads 3 and 4 below those (88 nodes). Each step keeps the budget's worth of them with
 * the highest confidence (the product of the heads' probabilities along the path), so the tree
 * grows where passes are cheap and guesses likely, and shrinks where they are not.
 */
export const DEFAULT_MEDUSA_CHOICES: TreeChoices = spaceOf([4, 3, 2, 2]);

/** Every path of ranks below widths[d] at depth d. */
export function spaceOf(widths: readonly number[]): number[][] {
  const out: number[][] = [];
  const grow = (path: number[]) => {
    if (path.length > 0) out.push(path);
    if (path.length < widths.length) for (let r = 0; r < widths[path.length]; r++) grow([...path, r]);
  };
  grow([]);
  return out;
}

/**
 * Method `medusa`: the heads read the target's final hidden state at the last verified
 * position; head k proposes the token k + 1 positions later. A static candidate space (Medusa's
 * `medusa_choices`) is filled with each head's top-k, whatever the path above them (Medusa-1);
 * of it, the `maxNodes` most confident nodes (the product of their heads' probabilities along
 * the path, so parents before children) are verified in one tree pass, most confident first.
 */
export class MedusaDrafter implements Drafter {
  readonly name = "medusa";
  readonly requires: readonly Capability[] = ["treeAttention", "hiddenStates"];
  private readonly shape: TreeShape;
  private readonly topK: number[]; // per depth: how many candidates the shape ranks
  private readonly logits: Float32Array; // (vocab)
  private hidden: Float32Array | undefined; // (dim) the state at the last verified position

  constructor(
    private readonly heads: MedusaHeads,
    choices: TreeChoices = DEFAULT_MEDUSA_CHOICES,
  ) {
    this.shape = compileTreeChoices(choices);
    this.topK = [];
    for (const p of this.shape.choices) this.topK[p.length - 1] = Math.max(this.topK[p.length - 1] ?? 0, p[p.length - 1] + 1);
    this.logits = new Float32Array(heads.vocabSize);
  }

  begin(): void {
    this.hidden = undefined; // none before the first verified step: that step drafts nothing
  }

  propose(_context: readonly Token[], budget: DraftBudget): DraftTree {
    if (!this.hidden) return NO_DRAFT;
    const depth = Math.min(budget.maxDepth, this.heads.count, this.topK.length);
    // Each head's ranked candidates and their probabilities, computed once per step.
    const ranked: Token[][] = [];
    const probs: number[][] = [];
    for (let d = 0; d < depth; d++) {
      this.heads.logits(d, this.hidden, this.logits);
      const top = topK(this.logits, this.topK[d]);
      ranked.push(top);
      probs.push(softmaxAt(this.logits, top));
    }
    // Confidence of each shape node within the depth: the product of its ranks' probabilities.
    const { parents, ranks, choices } = this.shape;
    const score = new Float64Array(parents.length).fill(-1);
    const order: number[] = [];
    for (let i = 0; i < parents.length; i++) {
      const d = choices[i].length - 1;
      if (d >= depth || ranks[i] >= ranked[d].length || (parents[i] >= 0 && score[parents[i]] < 0)) continue;
      score[i] = (parents[i] >= 0 ? score[parents[i]] : 1) * probs[d][ranks[i]];
      order.push(i);
    }
    // The most confident nodes, parents first (a child never scores above its parent; ties by depth).
    order.sort((a, b) => score[b] - score[a] || choices[a].length - choices[b].length || a - b);
    const keep = order.slice(0, budget.maxNodes);
    const node = new Map<number, number>();
    const tokens: Token[] = [];
    const treeParents: number[] = [];
    for (const i of keep) {
      if (parents[i] >= 0 && !node.has(parents[i])) continue; // a tie put a child first: skip it
      node.set(i, tokens.length);
      tokens.push(ranked[choices[i].length - 1][ranks[i]]);
      treeParents.push(parents[i] >= 0 ? node.get(parents[i])! : ROOT);
    }
    return { tokens, parents: treeParents };
  }

  observe(pass: VerifiedPass): void {
    // The state at the last verified slot: the deepest accepted node, or the root slot.
    const slot = pass.path.length > 0 ? pass.path[pass.path.length - 1] + 1 : 0;
    const dim = pass.hidden!.length / (pass.tree.tokens.length + 1);
    this.hidden = pass.hidden!.slice(slot * dim, (slot + 1) * dim);
  }
}

/** softmax(scores) at the given indices (the normaliser over every score). */
function softmaxAt(scores: Float32Array, at: readonly number[]): number[] {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += Math.exp(scores[i] - max);
  return at.map((i) => Math.exp(scores[i] - max) / sum);
}

/** The k highest-scoring indices, best first (lowest index on ties). */
export function topK(scores: Float32Array, k: number): Token[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (best.length === k && scores[i] <= scores[best[k - 1]]) continue;
    let j = best.length < k ? best.length : k - 1;
    best[j] = i;
    while (j > 0 && scores[best[j]] > scores[best[j - 1]]) {
      [best[j], best[j - 1]] = [best[j - 1], best[j]];
      j--;
    }
  }
  return best as Token[];
}

export const medusaMethod: MethodDescriptor = {
  name: "medusa",
  summary: "Medusa-1 heads on the target's hidden state guess 1..K tokens ahead; a static tree of their top candidates",
  defaultDraftMax: 8,
  options: {
    medusa: { kind: "file", description: "its heads (a GGUF file trained with `specdec train medusa` for this target)", familyFile: "medusa" },
    tree: { kind: "treeChoices", description: "candidate space as ranks per depth (Medusa's medusa_choices); each step verifies its most confident nodes within the budget", default: DEFAULT_MEDUSA_CHOICES },
  },
  requires: () => ["treeAttention", "hiddenStates"],
  create: (ctx, o) => new MedusaDrafter(MedusaHeads.load(o.medusa as string, ctx.target), o.tree as TreeChoices),
};
