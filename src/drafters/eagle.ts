// Method `eagle`: an EAGLE head (eagleHeads.ts) drafts from the target's own features, and an
// EAGLE-2 dynamic tree (Li et al. 2024) spends the node budget where the head is confident.
//
// The head's cache follows the committed tokens: at `begin` it takes the prompt's features (the
// prefill's hidden states); after each verified pass it drops what it drafted and takes the
// target's true features of the tokens just committed (slot 0's and the accepted nodes'), so it
// never drafts from a guess of its own that the target has since corrected. Taken entries wait
// until the next proposal and go through the head in one pass: steps the planner does not
// speculate on cost the head nothing.

import { SpecdecError } from "../errors.js";
import { isGreedy } from "../sampling/samplingSettings.js";
import type { Capability } from "../targets/target.js";
import type { Token } from "../types.js";
import { NO_DRAFT, ROOT, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart, VerifiedPass } from "./drafter.js";
import { EagleHead } from "./eagleHeads.js";
import { topK } from "./medusa.js";
import type { MethodDescriptor } from "./method.js";

/** A candidate next token and its log-probability under the head. */
export interface Candidate {
  readonly token: Token;
  readonly logProb: number;
}

/**
 * EAGLE-2's dynamic tree. `root` ranks the tokens after the last committed one; `expand(nodes)`
 * ranks the tokens after each of a batch of nodes (one head pass for the whole batch). Each node
 * scores the sum of the log-probabilities along its path (its cumulative confidence). Depth by
 * depth, the `width` best-scoring nodes of the newest depth are expanded — only those still among
 * the `maxNodes` best of all nodes so far: a node outside them stays outside, and so does its
 * subtree (a child never scores above its parent). Then the `maxNodes` best nodes are kept (ties:
 * shallower first, then earlier), which includes every kept node's parent, and they are emitted
 * in creation order: parents before children, siblings best first.
 */
export function dynamicTree(
  budget: DraftBudget,
  width: number,
  root: readonly Candidate[],
  expand: (nodes: readonly number[], tree: DraftTree) => readonly (readonly Candidate[])[],
): DraftTree {
  const maxNodes = Math.max(0, budget.maxNodes), maxDepth = budget.maxDepth;
  if (maxNodes === 0 || maxDepth < 1 || root.length === 0) return NO_DRAFT;
  const tokens: Token[] = [], parents: number[] = [], depth: number[] = [], score: number[] = [];
  const add = (c: Candidate, parent: number, d: number, base: number) => {
    tokens.push(c.token);
    parents.push(parent);
    depth.push(d);
    score.push(base + c.logProb);
    return tokens.length - 1;
  };
  // Best first: higher score, then shallower, then created earlier (a parent always precedes its children).
  const better = (a: number, b: number) => score[b] - score[a] || depth[a] - depth[b] || a - b;
  let frontier = root.slice(0, maxNodes).map((c) => add(c, ROOT, 1, 0));
  for (let d = 1; d < maxDepth && frontier.length > 0; d++) {
    const all = tokens.map((_, i) => i).sort(better);
    const inBudget = new Uint8Array(tokens.length);
    for (let i = 0; i < Math.min(maxNodes, all.length); i++) inBudget[all[i]] = 1;
    const pick = frontier.filter((i) => inBudget[i] === 1).sort(better).slice(0, width);
    if (pick.length === 0) break;
    const kids = expand(pick, { tokens, parents });
    if (kids.length !== pick.length) throw new Error(`dynamicTree: expand gave ${kids.length} candidate lists for ${pick.length} nodes`);
    frontier = [];
    pick.forEach((node, i) => {
      for (const c of kids[i].slice(0, maxNodes)) frontier.push(add(c, node, d + 1, score[node]));
    });
  }
  const kept = tokens.map((_, i) => i).sort(better).slice(0, maxNodes).sort((a, b) => a - b);
  const index = new Map(kept.map((node, i) => [node, i]));
  return { tokens: kept.map((i) => tokens[i]), parents: kept.map((i) => (parents[i] === ROOT ? ROOT : index.get(parents[i])!)) };
}

/** The k highest logits of a row (logits[off, off + V)) as candidates with their log-softmax at `temperature` (best first; lowest id on ties). */
export function topCandidates(logits: Float32Array, off: number, V: number, k: number, temperature = 1): Candidate[] {
  const row = logits.subarray(off, off + V), inv = 1 / temperature;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp((row[i] - max) * inv);
  const logZ = Math.log(sum);
  return topK(row, k).map((token) => ({ token, logProb: (row[token] - max) * inv - logZ }));
}

/** Default nodes expanded per depth and children ranked per node (EAGLE-2's top-k). */
export const DEFAULT_EAGLE_TOP_K = 4;

/**
 * The temperature of the head's distribution that scores the tree's nodes at temperature 0.
 * Greedy verification accepts a guess only when it is the target's argmax, so a sibling ranked
 * below the head's first choice is worth much less than its probability says, and a deep path
 * of first choices more: sharpened scores spend the budget on depth (measured on held-out
 * prompts other than the benchmark's: docs/measurements.md). When sampling, the scores use the
 * run's temperature: a deterministic guess is then kept with about its probability under the
 * target's shaped distribution, which the head was trained to match.
 */
export const GREEDY_SCORE_TEMPERATURE = 0.3;

export class EagleDrafter implements Drafter {
  readonly name = "eagle";
  readonly requires: readonly Capability[] = ["treeAttention", "hiddenStates"];
  private readonly dim: number;
  private readonly V: number;
  /** The head's predicted feature after the last committed entry: what the root-level guesses come from (valid when hasRoot). */
  private rootFeature: Float32Array; // (dim)
  private hasRoot = false;
  /** Committed entries not yet through the head: the target's features and the token after each. */
  private pendingFeats: Float32Array; // (capacity, dim)
  private pendingToks: Token[] = [];
  private readonly feats: Float32Array; // (maxBatch, dim) input features of one head pass
  private readonly toks: Int32Array; // (maxBatch)
  private readonly slots: Int32Array; // (maxBatch) parent slots
  private readonly outFeats: Float32Array; // (maxBatch, dim) predicted features
  private readonly logitsBuf: Float32Array; // (maxBatch, vocab)
  /** Per expanded tree node while drafting: its entry's slot in the head's cache and the row of its predicted feature (what its children read) in `predicted`. */
  private nodeSlot: number[] = [];
  private nodeRow: number[] = [];
  private predicted: Float32Array; // (rows, dim) the expanded nodes' predicted features, grown when a step expands more
  /** Temperature of the head's distribution in the nodes' scores (set per generation from the sampling settings). */
  private scoreTemperature = GREEDY_SCORE_TEMPERATURE;
  /** Milliseconds spent in the head (drafting and following the committed tokens) since the drafter was made. */
  headMs = 0;

  constructor(
    readonly head: EagleHead,
    readonly topK = DEFAULT_EAGLE_TOP_K,
  ) {
    if (!Number.isInteger(topK) || topK < 1) throw new SpecdecError(`EAGLE top-k must be a positive integer, got ${topK}`);
    this.dim = head.shape.dim;
    this.V = head.vocabSize;
    const B = head.maxBatch;
    this.rootFeature = new Float32Array(this.dim);
    this.feats = new Float32Array(B * this.dim);
    this.toks = new Int32Array(B);
    this.slots = new Int32Array(B);
    this.outFeats = new Float32Array(B * this.dim);
    this.logitsBuf = new Float32Array(B * this.V);
    this.predicted = new Float32Array(B * this.dim);
    this.pendingFeats = new Float32Array(B * this.dim);
  }

  begin(start: DrafterStart): void {
    const t0 = performance.now();
    this.head.truncate(0);
    this.hasRoot = false;
    this.pendingToks = [];
    this.scoreTemperature = isGreedy(start.sampling) ? GREEDY_SCORE_TEMPERATURE : start.sampling.temperature;
    // Entries (f_j, t_{j+1}) for the prompt: the prefill's features with the token after each.
    const n = start.prompt.length - 1, h = start.hidden;
    if (n > 0 && h && h.length === n * this.dim) this.take(h, start.prompt.slice(1), n);
    this.headMs += performance.now() - t0;
  }

  propose(_context: readonly Token[], budget: DraftBudget): DraftTree {
    const t0 = performance.now();
    if (this.pendingToks.length > 0) this.follow();
    if (!this.hasRoot) {
      this.headMs += performance.now() - t0;
      return NO_DRAFT;
    }
    const head = this.head, dim = this.dim, V = this.V;
    head.truncate(head.committed);
    const base = head.committed - 1; // the last committed entry: the parent slot of root-level nodes
    // Never more entries than the head's cache holds (the target's room bounds the tree already).
    const room = head.contextSize - head.committed;
    head.logits(this.rootFeature, 1, this.logitsBuf);
    const k = Math.min(this.topK, budget.maxNodes);
    const root = topCandidates(this.logitsBuf, 0, V, k, this.scoreTemperature);
    this.nodeSlot = [];
    this.nodeRow = [];
    let rows = 0;
    const expand = (nodes: readonly number[], tree: DraftTree): Candidate[][] => {
      const T = Math.min(nodes.length, head.maxBatch, room - (head.length - head.committed));
      for (let i = 0; i < T; i++) {
        const node = nodes[i], parent = tree.parents[node];
        this.feats.set(parent === ROOT ? this.rootFeature : this.predicted.subarray(this.nodeRow[parent] * dim, (this.nodeRow[parent] + 1) * dim), i * dim);
        this.toks[i] = tree.tokens[node];
        this.slots[i] = parent === ROOT ? base : this.nodeSlot[parent];
      }
      if (T <= 0) return nodes.map(() => []);
      const first = head.length;
      head.append(this.feats, this.toks, this.slots, T, this.outFeats);
      head.logits(this.outFeats, T, this.logitsBuf);
      if ((rows + T) * dim > this.predicted.length) {
        const grown = new Float32Array(2 * (rows + T) * dim);
        grown.set(this.predicted.subarray(0, rows * dim));
        this.predicted = grown;
      }
      this.predicted.set(this.outFeats.subarray(0, T * dim), rows * dim);
      const kids: Candidate[][] = [];
      for (let i = 0; i < nodes.length; i++) {
        if (i >= T) {
          kids.push([]);
          continue;
        }
        this.nodeSlot[nodes[i]] = first + i;
        this.nodeRow[nodes[i]] = rows + i;
        kids.push(topCandidates(this.logitsBuf, i * V, V, k, this.scoreTemperature));
      }
      rows += T;
      return kids;
    };
    const tree = dynamicTree(budget, this.topK, root, expand);
    head.truncate(head.committed);
    this.headMs += performance.now() - t0;
    return tree;
  }

  observe(pass: VerifiedPass): void {
    const t0 = performance.now();
    const dim = this.dim, hidden = pass.hidden;
    if (!hidden || hidden.length !== (pass.tree.tokens.length + 1) * dim) throw new SpecdecError("the EAGLE drafter needs the target's hidden states of every slot of the pass");
    this.head.truncate(this.head.committed);
    // The true features of slot 0 and of the accepted nodes, each with the token that followed it.
    const n = pass.path.length + 1;
    for (let i = 0; i < n; i++) {
      const s = i === 0 ? 0 : pass.path[i - 1] + 1;
      this.feats.set(hidden.subarray(s * dim, (s + 1) * dim), i * dim);
    }
    this.take(this.feats, pass.committed, n);
    this.headMs += performance.now() - t0;
  }

  /** Queue n committed entries: features (n, dim) and the token after each. */
  private take(features: Float32Array, nextTokens: readonly Token[], n: number): void {
    const dim = this.dim, at = this.pendingToks.length;
    if ((at + n) * dim > this.pendingFeats.length) {
      const grown = new Float32Array(2 * (at + n) * dim);
      grown.set(this.pendingFeats.subarray(0, at * dim));
      this.pendingFeats = grown;
    }
    this.pendingFeats.set(features.subarray(0, n * dim), at * dim);
    for (let i = 0; i < n; i++) this.pendingToks.push(nextTokens[i]);
  }

  /** Run the queued entries through the head as a chain, commit them, keep the last prediction. */
  private follow(): void {
    const head = this.head, dim = this.dim, B = head.maxBatch;
    const n = this.pendingToks.length, features = this.pendingFeats, nextTokens = this.pendingToks;
    this.pendingToks = [];
    if (head.length + n > head.contextSize) {
      this.hasRoot = false; // the context is full: the target stops here too
      return;
    }
    for (let from = 0; from < n; from += B) {
      const T = Math.min(B, n - from);
      for (let i = 0; i < T; i++) {
        this.toks[i] = nextTokens[from + i];
        this.slots[i] = head.length + i - 1;
      }
      head.append(features.subarray(from * dim, (from + T) * dim), this.toks, this.slots, T, this.outFeats);
      head.commit();
      if (from + T === n) this.rootFeature.set(this.outFeats.subarray((T - 1) * dim, T * dim));
    }
    this.hasRoot = true;
  }
}

export const eagleMethod: MethodDescriptor = {
  name: "eagle",
  summary: "EAGLE head on the target's features drafts token by token from its own predicted features; an EAGLE-2 dynamic tree within the node budget",
  defaultDraftMax: 8,
  options: {
    eagle: { kind: "file", description: "its head (a GGUF file trained with `specdec train eagle` for this target)", familyFile: "eagle" },
    eagleTopK: { kind: "integer", description: "nodes expanded per depth and candidates ranked per node (EAGLE-2's top-k)", default: DEFAULT_EAGLE_TOP_K, min: 1, max: 64 },
  },
  requires: () => ["treeAttention", "hiddenStates"],
  create: (ctx, o) => new EagleDrafter(EagleHead.load(o.eagle as string, ctx.target), o.eagleTopK as number),
};
