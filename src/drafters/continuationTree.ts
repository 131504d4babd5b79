// The continuations that followed earlier occurrences of a matched suffix, merged into a trie
// with a count per node (how many occurrences continue that way), and the speculation tree cut
// from it: SuffixDecoding's scoring, where a node's probability is the share of occurrences
// whose continuation passes through it (the product of count(child) / count(parent) along the
// path, which telescopes to count(node) / occurrences).

import type { Token } from "../types.js";
import { ROOT, type DraftTree } from "./draftTree.js";

export interface TreeLimits {
  /** Most nodes. */
  readonly maxNodes: number;
  /** Most root-to-leaf paths (1 = a chain). */
  readonly maxLeaves: number;
  /** Nodes whose probability is below this are left out. */
  readonly minProbability: number;
}

/** A speculation tree and its score: the sum of its nodes' probabilities (expected accepted tokens). */
export interface ScoredTree {
  readonly tree: DraftTree;
  readonly score: number;
}

export class ContinuationTrie {
  // Trie nodes, (nodes): token, parent node (-1 = the matched suffix itself), count, depth.
  private token: Token[] = [];
  private parent: number[] = [];
  private count: number[] = [];
  private depth: number[] = [];
  private childOf = new Map<number, number>(); // (parent + 1) * 2^31 + token -> node
  /** Continuations added (the occurrences counted). */
  occurrences = 0;

  clear(): void {
    this.token.length = this.parent.length = this.count.length = this.depth.length = 0;
    this.childOf.clear();
    this.occurrences = 0;
  }

  /** Count one occurrence's continuation (an empty one is not an occurrence that can guess). */
  add(continuation: readonly Token[]): void {
    if (continuation.length === 0) return;
    this.occurrences++;
    let node = ROOT;
    for (const t of continuation) {
      const key = (node + 1) * 2147483648 + t;
      let child = this.childOf.get(key);
      if (child === undefined) {
        child = this.token.length;
        this.token.push(t);
        this.parent.push(node);
        this.count.push(0);
        this.depth.push(node === ROOT ? 1 : this.depth[node] + 1);
        this.childOf.set(key, child);
      }
      this.count[child]++;
      node = child;
    }
  }

  /**
   * The most probable nodes first: a node is taken when its parent was taken and the limits
   * allow it, in order of count (ties: shallower, then the continuation added first), so the
   * output is topological, siblings come most likely first, and any prefix of it is the best
   * tree of that size.
   */
  select(limits: TreeLimits): ScoredTree {
    const n = this.token.length;
    const tokens: Token[] = [];
    const parents: number[] = [];
    if (n === 0 || limits.maxNodes <= 0) return { tree: { tokens, parents }, score: 0 };
    // Sort keys (count descending, depth, node) packed in one number: a plain numeric sort.
    let maxDepth = 0;
    for (let i = 0; i < n; i++) maxDepth = Math.max(maxDepth, this.depth[i]);
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = ((this.occurrences - this.count[i]) * (maxDepth + 1) + this.depth[i]) * n + i;
    keys.sort();
    const taken = new Int32Array(n).fill(-1); // trie node -> tree node
    const hasChild: boolean[] = []; // per tree node
    let rootHasChild = false;
    let leaves = 0;
    let score = 0;
    const minCount = limits.minProbability * this.occurrences;
    for (const key of keys) {
      const i = key % n;
      if (tokens.length >= limits.maxNodes || this.count[i] < minCount) break;
      const p = this.parent[i];
      const tp = p === ROOT ? ROOT : taken[p];
      if (p !== ROOT && tp < 0) continue;
      const newLeaf = tp === ROOT ? rootHasChild : hasChild[tp];
      if (newLeaf && leaves >= limits.maxLeaves) continue;
      if (newLeaf || leaves === 0) leaves++;
      if (tp === ROOT) rootHasChild = true;
      else hasChild[tp] = true;
      taken[i] = tokens.length;
      hasChild.push(false);
      tokens.push(this.token[i]);
      parents.push(tp);
      score += this.count[i] / this.occurrences;
    }
    return { tree: { tokens, parents }, score };
  }
}
