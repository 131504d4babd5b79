import type { Capability } from "../targets/target.js";
import type { Token } from "../types.js";
import { compileTreeChoices, NO_DRAFT, treeFromChoices, type DraftTree, type TreeChoices, type TreeShape } from "./draftTree.js";
import type { DraftBudget, Drafter, VerifiedPass } from "./drafter.js";
import { MedusaHeads } from "./medusaHeads.js";
import type { MethodDescriptor } from "./method.js";

/**
 * The default candidate tree: the top-1 guesses of the first two heads, chosen by measurement
 * with the default family's heads (docs/measurements.md, "Medusa tree shapes"): on a compute-bound
 * model every node costs about a one-token pass, so a small tree comes closest to paying. Where a
 * pass is memory-bound and extra nodes are nearly free, pass a bigger `tree`.
 */
export const DEFAULT_MEDUSA_CHOICES: TreeChoices = [[0], [0, 0]];

/**
 * Method `medusa`: the heads read the target's final hidden state at the last verified
 * position; head k proposes the token k + 1 positions later. The candidates of a static tree
 * shape (Medusa's `medusa_choices`) are filled with each head's top-k, whatever the path
 * above them (Medusa-1), and verified in one tree pass.
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
    // Each head's ranked candidates, computed once per step.
    const ranked: Token[][] = [];
    for (let d = 0; d < depth; d++) {
      this.heads.logits(d, this.hidden, this.logits);
      ranked.push(topK(this.logits, this.topK[d]));
    }
    // Shape nodes come sorted by depth: cut at the depth and node budgets.
    const keep = this.shape.choices.filter((p) => p.length <= depth).slice(0, budget.maxNodes);
    return treeFromChoices(keep, (path) => ranked[path.length] ?? []);
  }

  observe(pass: VerifiedPass): void {
    // The state at the last verified slot: the deepest accepted node, or the root slot.
    const slot = pass.path.length > 0 ? pass.path[pass.path.length - 1] + 1 : 0;
    const dim = pass.hidden!.length / (pass.tree.tokens.length + 1);
    this.hidden = pass.hidden!.slice(slot * dim, (slot + 1) * dim);
  }
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
    tree: { kind: "treeChoices", description: "tree shape as ranks per depth (Medusa's medusa_choices)", default: DEFAULT_MEDUSA_CHOICES },
  },
  requires: () => ["treeAttention", "hiddenStates"],
  create: (ctx, o) => new MedusaDrafter(MedusaHeads.load(o.medusa as string, ctx.target), o.tree as TreeChoices),
};
