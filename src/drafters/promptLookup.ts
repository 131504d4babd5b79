import { SpecdecError } from "../errors.js";
import type { Capability } from "../targets/target.js";
import type { Token } from "../types.js";
import { ROOT, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart } from "./drafter.js";
import type { MethodDescriptor } from "./method.js";
import { continuation, NgramIndex } from "./ngramIndex.js";

export interface PromptLookupOptions {
  /** Longest n-gram matched against the end of the context. Default 3. */
  ngramMax?: number;
  /**
   * Shortest n-gram tried before giving up. Default 2: single-token matches guess right about
   * half as often, and a wrong guess costs nearly what a right one saves (docs/measurements.md).
   */
  ngramMin?: number;
  /**
   * Continuations merged into one tree: the matches of the longest n-gram first, newest first,
   * shared prefixes once. Default 1 (a chain: the newest match of the longest n-gram); more
   * than 1 needs a target with tree attention.
   */
  candidates?: number;
}

/**
 * Method `prompt-lookup`: if the last n tokens of the context occurred before (in the prompt
 * or in the text generated so far), guess that what followed them then follows them now.
 * Longest match first, from ngramMax down to ngramMin; the most recent occurrence first. With
 * several candidates the continuations of several matches share one tree. All guesses are
 * deterministic (one-hot q), so greedy and sampled verification both stay exact.
 */
export class PromptLookupDrafter implements Drafter {
  readonly name = "prompt-lookup";
  readonly requires: readonly Capability[];
  readonly ngramMax: number;
  readonly ngramMin: number;
  readonly candidates: number;
  private index!: NgramIndex;

  constructor(options: PromptLookupOptions = {}) {
    this.ngramMax = options.ngramMax ?? 3;
    this.ngramMin = options.ngramMin ?? 2;
    this.candidates = options.candidates ?? 1;
    if (!(Number.isInteger(this.ngramMin) && this.ngramMin >= 1 && Number.isInteger(this.ngramMax) && this.ngramMax >= this.ngramMin))
      throw new SpecdecError(`prompt-lookup: ngramMin (${this.ngramMin}) and ngramMax (${this.ngramMax}) must be integers with 1 <= ngramMin <= ngramMax`);
    if (!Number.isInteger(this.candidates) || this.candidates < 1) throw new SpecdecError(`prompt-lookup: candidates must be an integer >= 1, got ${this.candidates}`);
    this.requires = this.candidates > 1 ? ["treeAttention"] : [];
  }

  begin(start?: DrafterStart): void {
    // Index the prompt now (prefill time); proposals then only index what was committed.
    this.index = new NgramIndex(this.ngramMax, this.candidates);
    if (start) this.index.extend(start.prompt);
  }

  propose(context: readonly Token[], budget: DraftBudget): DraftTree {
    this.index.extend(context);
    const tokens: Token[] = [];
    const parents: number[] = [];
    const childOf = new Map<string, number>(); // "parent:token" → node, to merge shared prefixes
    const seen = new Set<number>();
    for (let n = this.ngramMax; n >= this.ngramMin && seen.size < this.candidates; n--) {
      for (const start of this.index.continuations(context, n)) {
        if (seen.size >= this.candidates) break;
        if (seen.has(start)) continue; // the same occurrence matched by a shorter n-gram
        seen.add(start);
        // Insert the continuation as a path, reusing nodes it shares with earlier candidates.
        let parent = ROOT;
        for (const tok of continuation(context, start, budget.maxDepth)) {
          const key = parent + ":" + tok;
          let node = childOf.get(key);
          if (node === undefined) {
            if (tokens.length >= budget.maxNodes) break;
            node = tokens.length;
            tokens.push(tok);
            parents.push(parent);
            childOf.set(key, node);
          }
          parent = node;
        }
      }
    }
    return { tokens, parents };
  }

  observe(): void {}
}

export const promptLookupMethod: MethodDescriptor = {
  name: "prompt-lookup",
  summary: "guess what followed the last n tokens where they occurred before (prompt or output); several matches form a tree",
  defaultDraftMax: 2,
  options: {
    ngramMax: { kind: "integer", description: "longest n-gram matched", default: 3, min: 1, max: 64 },
    ngramMin: { kind: "integer", description: "shortest n-gram matched", default: 2, min: 1, max: 64 },
    candidates: { kind: "integer", description: "continuations of up to this many matches merged into a tree verified in one pass", default: 1, min: 1, max: 64 },
  },
  requires: (o) => ((o.candidates as number) > 1 ? ["treeAttention"] : []),
  create: (_ctx, o) => new PromptLookupDrafter({ ngramMax: o.ngramMax as number, ngramMin: o.ngramMin as number, candidates: o.candidates as number }),
};
