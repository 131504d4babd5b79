import type { DrafterStart, DraftOutcome, TreeBudget, TreeDrafter } from "../drafter.js";
import { compileTreeChoices, treeFromChoices, type DraftTree, type TreeChoices, type TreeShape } from "../draftTree.js";
import type { MedusaHeads } from "../medusa/medusaHeads.js";
import type { Token } from "../types.js";

/**
 * The default candidate tree: the top-1 guesses of the first two heads. Chosen by measurement
 * (`npm run bench:medusa`, heads trained with `specdec train medusa` for stories260K, 8 held-out
 * prompts, docs/measurements.md): τ grows with the tree (1.60 with one node, 1.94 with two, 2.25
 * with a chain of four, 2.80 with 16 nodes) but on that compute-bound model every node costs
 * about a one-token pass, so only one or two guesses come near plain decoding (0.74–1.11x and
 * 0.58–0.94x over two runs). Two keep most of the gain where a pass is memory-bound and extra nodes are nearly free;
 * pass a bigger `--tree` for such models.
 */
export const DEFAULT_MEDUSA_CHOICES: TreeChoices = [[0], [0, 0]];

/**
 * Method `medusa`: the heads read the target's final hidden state at the last verified
 * position; head k proposes the token k + 1 positions later. The candidates of a static tree
 * shape (Medusa's `medusa_choices`) are filled with each head's top-k, whatever the path
 * above them (Medusa-1), and verified in one tree pass.
 */
export class MedusaDrafter implements TreeDrafter {
  readonly name = "medusa";
  /** The loop hands this drafter the target's hidden state after every step. */
  readonly needsHidden = true;
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
    this.logits = new Float32Array(heads.target.vocabSize);
  }

  async begin(_start: DrafterStart): Promise<void> {
    this.hidden = undefined; // none before the first verified step: that step drafts nothing
  }

  async proposeTree(_context: readonly Token[], budget: TreeBudget): Promise<DraftTree> {
    if (!this.hidden) return { tokens: [], parents: [] };
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

  observe(outcome: DraftOutcome): void {
    this.hidden = outcome.hidden;
  }
}

/** The k highest-scoring indices, best first (lowest index on ties). */
function topK(scores: Float32Array, k: number): Token[] {
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
