// Draft trees: several guesses per position, sharing prefixes, checked by the target in one pass
// (SpecInfer, Medusa, EAGLE). A chain draft is the special case of a tree with one child per node.
import { SpecdecError } from "../errors.js";
import type { Distribution, Token } from "../types.js";

/** Parent index of a root-level node: its parent is the last committed token. */
export const ROOT = -1;

/**
 * A tree of guesses, flattened in topological order (every parent before its children), the
 * same layout the engine's tree attention mask takes (`parents` there has the same meaning).
 *
 * Siblings are ordered: a verifier tries a node's children in index order. Put the most likely
 * deterministic guess first; sampled siblings must stay in the order they were drawn.
 */
export interface DraftTree {
  readonly tokens: readonly Token[];
  /** For each node: `ROOT` (-1) = child of the last committed token; otherwise an earlier node index. */
  readonly parents: readonly number[];
  /**
   * For each node, when it was sampled: the (shaped) distribution its token was drawn from,
   * conditional on its path and on its earlier siblings (see `TreeRejectionSampler` for what
   * makes verification exact). A missing array or a missing entry means the token was
   * proposed deterministically (one-hot q).
   */
  readonly q?: readonly (Distribution | undefined)[];
}

/**
 * Throw a `SpecdecError` naming the first problem of a malformed tree: length mismatches,
 * a parent that is not `ROOT` or an earlier node, a token outside the vocabulary, a q of the
 * wrong size or one that gives its own token no probability (then it cannot have been drawn from it).
 * `what` opens the message (the decode loop names the drafter).
 */
export function validateTree(tree: DraftTree, vocabSize?: number, what = "draft tree"): void {
  const n = tree.tokens.length;
  if (tree.parents.length !== n) throw new SpecdecError(`${what}: ${n} tokens but ${tree.parents.length} parents`);
  if (tree.q && tree.q.length !== n) throw new SpecdecError(`${what}: ${n} tokens but ${tree.q.length} q entries`);
  for (let i = 0; i < n; i++) {
    const parent = tree.parents[i];
    if (!Number.isInteger(parent) || parent < ROOT || parent >= i) {
      throw new SpecdecError(`${what}: parent of node ${i} must be ${ROOT} (root) or an earlier node index 0..${i - 1}, got ${parent}`);
    }
    const t = tree.tokens[i];
    if (!Number.isInteger(t) || t < 0 || (vocabSize !== undefined && t >= vocabSize)) {
      throw new SpecdecError(`${what}: token of node ${i} is ${t}, outside the vocabulary${vocabSize !== undefined ? ` (size ${vocabSize})` : ""}`);
    }
    const q = tree.q?.[i];
    if (q) {
      if (vocabSize !== undefined && q.length !== vocabSize) throw new SpecdecError(`${what}: q of node ${i} has ${q.length} entries, vocabulary has ${vocabSize}`);
      if (!(q[t] > 0)) throw new SpecdecError(`${what}: q of node ${i} gives its own token ${t} probability ${q[t]}; a sampled token must have q > 0`);
    }
  }
}

/** Child lists: `roots` are the root-level nodes, `children[i]` the children of node i, each in index order. */
export interface TreeChildren {
  readonly roots: readonly number[];
  readonly children: readonly (readonly number[])[];
}

export function treeChildren(tree: DraftTree): TreeChildren {
  const roots: number[] = [];
  const children: number[][] = tree.tokens.map(() => []);
  tree.parents.forEach((parent, i) => (parent === ROOT ? roots : children[parent]).push(i));
  return { roots, children };
}

/**
 * Depth of each node = the length of its path: root-level nodes have depth 1, and a node at
 * depth d would sit d - 1 positions after the last committed token.
 */
export function nodeDepths(tree: DraftTree): number[] {
  const depth: number[] = new Array(tree.tokens.length);
  tree.parents.forEach((parent, i) => (depth[i] = parent === ROOT ? 1 : depth[parent] + 1));
  return depth;
}

/** The tokens of a path of nodes (root level first). */
export function pathTokens(tree: DraftTree, path: readonly number[]): Token[] {
  return path.map((i) => tree.tokens[i]);
}

/** The empty proposal: nothing guessed. */
export const NO_DRAFT: DraftTree = { tokens: [], parents: [] };

/** A chain of guesses as a tree: node i is the child of node i - 1; `q` as in DraftTree. */
export function chainTree(tokens: readonly Token[], q?: readonly (Distribution | undefined)[]): DraftTree {
  const parents = tokens.map((_, i) => i - 1);
  return q ? { tokens, parents, q } : { tokens, parents };
}

/** Whether every node's parent is the node before it (a chain: what any target can verify). */
export function isChain(tree: DraftTree): boolean {
  return tree.parents.every((p, i) => p === i - 1);
}

// ---- Static tree shapes (Medusa's `medusa_choices`) -------------------------------------------

/**
 * A static tree shape: one path per node, each path a list of candidate ranks per depth.
 * [[0], [1], [0, 0], [0, 1], [1, 0]] = the top-2 candidates at depth 1; below the top-1 one,
 * the top-2 candidates at depth 2; below the second one, the top-1 candidate at depth 2.
 * Every path's parent (the path minus its last rank) must be in the list too.
 */
export type TreeChoices = readonly (readonly number[])[];

/**
 * Check a shape (non-empty paths of non-negative integer ranks, no duplicates, every parent
 * present) and return it sorted as Medusa sorts it: by depth, then by ranks, so parents come
 * before their children and siblings come in rank order.
 */
export function normalizeTreeChoices(choices: TreeChoices): number[][] {
  const seen = new Set<string>();
  for (const [i, path] of choices.entries()) {
    if (!Array.isArray(path) || path.length === 0) throw new SpecdecError(`tree choices: path ${i + 1} is empty`);
    for (const r of path) {
      if (!Number.isInteger(r) || r < 0) throw new SpecdecError(`tree choices: path ${i + 1} (${path.join(",")}) has rank ${r}; ranks are non-negative integers`);
    }
    const key = path.join(",");
    if (seen.has(key)) throw new SpecdecError(`tree choices: path ${key} is listed twice`);
    seen.add(key);
  }
  for (const path of choices) {
    const parent = path.slice(0, -1).join(",");
    if (path.length > 1 && !seen.has(parent)) throw new SpecdecError(`tree choices: path ${path.join(",")} has no parent path ${parent} in the list`);
  }
  return choices.map((p) => [...p]).sort((a, b) => a.length - b.length || compareRanks(a, b));
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** The shape of a chain of `length` top-1 guesses: [[0], [0,0], ...]. */
export function chainChoices(length: number): number[][] {
  return Array.from({ length }, (_, i) => new Array<number>(i + 1).fill(0));
}

/**
 * A shape compiled for filling once per step: node i of the shape has parent `parents[i]`
 * (`ROOT` or an earlier index) and is the `ranks[i]`-th candidate after its parent.
 */
export interface TreeShape {
  readonly choices: readonly (readonly number[])[];
  readonly parents: readonly number[];
  readonly ranks: readonly number[];
}

export function compileTreeChoices(choices: TreeChoices): TreeShape {
  const sorted = normalizeTreeChoices(choices);
  const index = new Map(sorted.map((p, i) => [p.join(","), i]));
  return {
    choices: sorted,
    parents: sorted.map((p) => (p.length === 1 ? ROOT : index.get(p.slice(0, -1).join(","))!)),
    ranks: sorted.map((p) => p[p.length - 1]),
  };
}

/**
 * Fill a shape with tokens. `candidates(pathTokens)` returns the ranked candidates after the
 * tokens of a path, called once per parent (Medusa: the top-k of head `pathTokens.length`,
 * whatever the path; a draft model: its top-k after the path). A node whose rank has no
 * candidate is left out with its descendants. The tree is deterministic (no q): verify it as
 * one-hot guesses — which is exact only if the candidates are a function of the context.
 */
export function treeFromChoices(shape: TreeShape | TreeChoices, candidates: (path: readonly Token[]) => readonly Token[]): DraftTree {
  const s = "ranks" in shape ? shape : compileTreeChoices(shape);
  const n = s.parents.length;
  const tokens: Token[] = [];
  const parents: number[] = [];
  const nodeOf = new Array<number>(n); // shape node → tree node, or -2 when left out
  const pathOf: Token[][] = new Array(n);
  const ranked: (readonly Token[] | undefined)[] = new Array(n); // candidates after each shape node
  let rootCands: readonly Token[] | undefined;
  for (let i = 0; i < n; i++) {
    const sp = s.parents[i];
    nodeOf[i] = -2;
    if (sp !== ROOT && nodeOf[sp] < 0) continue; // the parent was left out
    const prefix = sp === ROOT ? [] : pathOf[sp];
    const cands = sp === ROOT ? (rootCands ??= candidates(prefix)) : (ranked[sp] ??= candidates(prefix));
    const rank = s.ranks[i];
    if (rank >= cands.length) continue;
    nodeOf[i] = tokens.length;
    tokens.push(cands[rank]);
    parents.push(sp === ROOT ? ROOT : nodeOf[sp]);
    pathOf[i] = [...prefix, cands[rank]];
  }
  return { tokens, parents };
}
