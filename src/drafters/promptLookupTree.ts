import type { DrafterStart, DraftOutcome, TreeBudget, TreeDrafter } from "../drafter.js";
import { ROOT, type DraftTree } from "../draftTree.js";
import type { Token } from "../types.js";
import { continuation, NgramIndex } from "./ngramIndex.js";
import { resolvePromptLookup, type PromptLookupOptions } from "./promptLookup.js";

export interface PromptLookupTreeOptions extends PromptLookupOptions {
  /** Continuations merged into the tree: matches of the longest n-gram first, newest first. Default 4. */
  candidates?: number;
}

/**
 * Method `prompt-lookup` with several candidates: the continuations of all recent matches of
 * the longest n-gram (then of shorter ones) merged into one tree, shared prefixes once. All
 * guesses are deterministic (one-hot q), so greedy and sampled verification both stay exact.
 */
export class PromptLookupTreeDrafter implements TreeDrafter {
  readonly name = "prompt-lookup";
  readonly maxNgram: number;
  readonly minNgram: number;
  readonly candidates: number;
  private index!: NgramIndex;

  constructor(options: PromptLookupTreeOptions = {}) {
    ({ maxNgram: this.maxNgram, minNgram: this.minNgram } = resolvePromptLookup(options));
    this.candidates = options.candidates ?? 4;
    if (!Number.isInteger(this.candidates) || this.candidates < 1) throw new RangeError(`candidates must be an integer >= 1, got ${this.candidates}`);
  }

  async begin(_start: DrafterStart): Promise<void> {
    this.index = new NgramIndex(this.maxNgram, this.candidates);
  }

  async proposeTree(context: readonly Token[], budget: TreeBudget): Promise<DraftTree> {
    this.index.extend(context);
    const tokens: Token[] = [];
    const parents: number[] = [];
    const childOf = new Map<string, number>(); // "parent:token" → node, to merge shared prefixes
    let used = 0;
    const seen = new Set<number>();
    for (let n = this.maxNgram; n >= this.minNgram && used < this.candidates; n--) {
      for (const start of this.index.continuations(context, n)) {
        if (used >= this.candidates) break;
        if (seen.has(start)) continue; // the same occurrence matched by a shorter n-gram
        seen.add(start);
        used++;
        // Insert the continuation as a path, reusing nodes it shares with earlier candidates.
        let parent = ROOT;
        for (const tok of continuation(context, start, budget.maxDepth)) {
          const k = parent + ":" + tok;
          let node = childOf.get(k);
          if (node === undefined) {
            if (tokens.length >= budget.maxNodes) break;
            node = tokens.length;
            tokens.push(tok);
            parents.push(parent);
            childOf.set(k, node);
          }
          parent = node;
        }
      }
    }
    return { tokens, parents };
  }

  observe(_outcome: DraftOutcome): void {}
}
