import { test } from "node:test";
import assert from "node:assert/strict";
import { chainChoices, chainTree, compileTreeChoices, type DraftTree, nodeDepths, ROOT, treeChildren, treeFromChoices, validateTree } from "../src/drafters/draftTree.js";
import { formatTreeChoices, parseTreeChoices } from "../src/cli/treeChoices.js";
import { SpecdecError } from "../src/errors.js";
import { SeededRng } from "../src/sampling/rng.js";
import { argmax, sample, sampleFrom } from "../src/sampling/shapeDistribution.js";
import { asTokens, type Distribution, type Rng, type Token } from "../src/types.js";
import { GreedyVerifier } from "../src/verifiers/greedy.js";
import { RejectionSampler } from "../src/verifiers/rejectionSampler.js";
import type { TargetOutputs, Verdict, Verifier } from "../src/verifiers/verifier.js";
import { randomDistribution, randomTransitions, sequenceIndex, totalVariation } from "./support/markovModel.js";

const tok = (t: number) => t as Token;

/** The target's outputs for a tree: the distribution after the root slot, then after each node. */
const outputs = (pRoot: Distribution, pAfter: readonly Distribution[]): TargetOutputs => {
  const p = [pRoot, ...pAfter];
  return { argmax: p.map((d) => argmax(d)), p };
};

/** Node indices from the root level down to `node` (inclusive). */
function pathTo(tree: DraftTree, node: number): number[] {
  if (!Number.isInteger(node) || node < 0 || node >= tree.tokens.length) throw new RangeError(`draft tree: no node ${node}`);
  const path: number[] = [];
  for (let i = node; i !== ROOT; i = tree.parents[i]) path.push(i);
  return path.reverse();
}

// ---- Tree structure -------------------------------------------------------------------------

test("draft tree helpers: children, depths, paths, chains", () => {
  //        root
  //       /    \
  //      0(7)   1(3)
  //     /  \      \
  //   2(1) 3(2)   4(5)
  //    |
  //   5(9)
  const tree: DraftTree = { tokens: asTokens([7, 3, 1, 2, 5, 9]), parents: [ROOT, ROOT, 0, 0, 1, 2] };
  validateTree(tree, 10);
  const { roots, children } = treeChildren(tree);
  assert.deepEqual(roots, [0, 1]);
  assert.deepEqual(children, [[2, 3], [4], [5], [], [], []]);
  assert.deepEqual(nodeDepths(tree), [1, 1, 2, 2, 2, 3]);
  assert.deepEqual(pathTo(tree, 5), [0, 2, 5]);
  assert.deepEqual(pathTo(tree, 1), [1]);
  assert.throws(() => pathTo(tree, 6), RangeError);
  const q = [randomDistribution(4, new SeededRng(1)), undefined];
  assert.deepEqual(chainTree(asTokens([2, 3]), q), { tokens: [2, 3], parents: [ROOT, 0], q });
  assert.deepEqual(chainTree(asTokens([])), { tokens: [], parents: [] });
});

test("validateTree names what is malformed", () => {
  const bad = (tree: DraftTree, pattern: RegExp, vocab?: number) => assert.throws(() => validateTree(tree, vocab), (e: unknown) => e instanceof SpecdecError && pattern.test(e.message));
  bad({ tokens: asTokens([1, 2]), parents: [ROOT] }, /2 tokens but 1 parents/);
  bad({ tokens: asTokens([1]), parents: [ROOT], q: [] }, /1 tokens but 0 q entries/);
  bad({ tokens: asTokens([1, 2]), parents: [ROOT, 1] }, /parent of node 1 must be -1 \(root\) or an earlier node index 0\.\.0, got 1/);
  bad({ tokens: asTokens([1, 2]), parents: [ROOT, 5] }, /parent of node 1 .* got 5/);
  bad({ tokens: asTokens([1]), parents: [-2] }, /parent of node 0 .* got -2/);
  bad({ tokens: asTokens([1]), parents: [0.5] }, /got 0\.5/);
  bad({ tokens: asTokens([12]), parents: [ROOT] }, /token of node 0 is 12, outside the vocabulary \(size 10\)/, 10);
  bad({ tokens: asTokens([1]), parents: [ROOT], q: [new Float32Array(3)] }, /q of node 0 has 3 entries, vocabulary has 10/, 10);
  bad({ tokens: asTokens([1]), parents: [ROOT], q: [Float32Array.from([1, 0, 0])] }, /q of node 0 gives its own token 1 probability 0/, 3);
});

test("tree choices: parse, normalise, format, fill", () => {
  assert.deepEqual(parseTreeChoices("0;1;0,0;0,1;1,0"), [[0], [1], [0, 0], [0, 1], [1, 0]]);
  assert.deepEqual(parseTreeChoices(" 1,0 ; 0 ;1; 0,0 "), [[0], [1], [0, 0], [1, 0]]);
  assert.deepEqual(parseTreeChoices("[[0,1],[0],[1],[0,0]]"), [[0], [1], [0, 0], [0, 1]]);
  assert.equal(formatTreeChoices(parseTreeChoices("0;1;0,0;0,1;1,0")), "0;1;0,0;0,1;1,0");
  assert.deepEqual(compileTreeChoices([[1, 0], [0], [1], [0, 0], [0, 1]]), { choices: [[0], [1], [0, 0], [0, 1], [1, 0]], parents: [ROOT, ROOT, 0, 0, 1], ranks: [0, 1, 0, 1, 0] });
  assert.deepEqual(chainChoices(3), [[0], [0, 0], [0, 0, 0]]);
  const fails: [string, RegExp][] = [
    ["", /empty; expected paths like/],
    ["0;;1", /path 2 of "0;;1" is empty/],
    ["0;1;", /path 3 of "0;1;" is empty/],
    ["0;0,x", /path 2 \("0,x"\) has rank "x"/],
    ["0;0,", /path 2 \("0,"\) has rank ""/],
    ["0;-1", /rank "-1"/],
    ["0;1.5", /rank "1\.5"/],
    ["0;1;0", /path 0 is listed twice/],
    ["0;1,0", /path 1,0 has no parent path 1/],
    ["0;0,0,0", /path 0,0,0 has no parent path 0,0/],
    ["[[0],[]]", /path 2 is empty/],
    ["[[0],", /not valid JSON/],
    ["[0,1]", /must be a list of lists/],
    ["[[0],[-1]]", /rank -1/],
  ];
  for (const [text, pattern] of fails) {
    assert.throws(() => parseTreeChoices(text), (e: unknown) => e instanceof SpecdecError && pattern.test(e.message), `"${text}" should fail with ${pattern}`);
  }
  // Fill: candidates depend on the path; a rank without a candidate drops the node and its subtree.
  const tree = treeFromChoices(parseTreeChoices("0;1;2;0,0;0,1;2,0;0,0,0"), (path) => (path.length === 0 ? asTokens([4, 5]) : asTokens([path[path.length - 1] + 1, 9])));
  assert.deepEqual(tree, { tokens: [4, 5, 5, 9, 6], parents: [ROOT, ROOT, 0, 0, 2] });
});

// ---- Greedy --------------------------------------------------------------------------------

/** A distribution over `V` tokens whose argmax is `best` (and, optionally, with a tie at `tie`). */
function peakAt(V: number, best: number, tie?: number): Distribution {
  const d = new Float32Array(V).fill(0.5 / V);
  d[best] = 1;
  if (tie !== undefined) d[tie] = 1;
  const s = d.reduce((a, b) => a + b, 0);
  return d.map((x) => x / s);
}

test("greedy tree verification: longest matching path, ties, empty acceptance, bonus", () => {
  const V = 10;
  const g = new GreedyVerifier();
  // Roots 0(5) 1(3); under 1: 2(2) 3(8); under 2: 4(6); under 3: 5(1).
  const tree: DraftTree = { tokens: asTokens([5, 3, 2, 8, 6, 1]), parents: [ROOT, ROOT, 1, 1, 2, 3] };
  const after = (argmaxes: number[]) => argmaxes.map((a) => peakAt(V, a));
  // Target: 3, then 8, then 1, then 7: path 1 → 3 → 5 (leaf), bonus 7.
  assert.deepEqual(g.verify(tree, outputs(peakAt(V, 3), after([0, 8, 0, 1, 0, 7]))), { path: [1, 3, 5], token: 7, kind: "bonus" });
  // Target: 3, then 2, then 0: path 1 → 2, node 4 (6) rejected, recovered 0.
  assert.deepEqual(g.verify(tree, outputs(peakAt(V, 3), after([0, 2, 0, 0, 0, 0]))), { path: [1, 2], token: 0, kind: "recovered" });
  // Nothing matches at the root.
  assert.deepEqual(g.verify(tree, outputs(peakAt(V, 4), after([0, 0, 0, 0, 0, 0]))), { path: [], token: 4, kind: "recovered" });
  // Tie 8 vs 3 at the root: the lowest id (3) wins.
  assert.deepEqual(g.verify(tree, outputs(peakAt(V, 8, 3), after([0, 9, 0, 0, 0, 0]))), { path: [1], token: 9, kind: "recovered" });
  // Empty tree: the target's own token, nothing rejected.
  assert.deepEqual(g.verify({ tokens: [], parents: [] }, outputs(peakAt(V, 6), [])), { path: [], token: 6, kind: "bonus" });
  // Duplicate siblings: both carry 3; the second has the longer matching continuation.
  const dup: DraftTree = { tokens: asTokens([3, 3, 4, 4]), parents: [ROOT, ROOT, 0, 1] };
  const dupAfter = [peakAt(V, 4), peakAt(V, 4), peakAt(V, 1), peakAt(V, 2)];
  assert.deepEqual(g.verify({ tokens: dup.tokens.slice(0, 3), parents: [ROOT, ROOT, 0] }, outputs(peakAt(V, 3), dupAfter.slice(0, 3))), { path: [0, 2], token: 1, kind: "bonus" });
  const dupLonger: DraftTree = { tokens: asTokens([3, 3, 4, 4, 2]), parents: [ROOT, ROOT, 1, 0, 2] };
  assert.deepEqual(g.verify(dupLonger, outputs(peakAt(V, 3), [peakAt(V, 4), peakAt(V, 4), peakAt(V, 2), peakAt(V, 0), peakAt(V, 5)])), { path: [1, 2, 4], token: 5, kind: "bonus" });
  // Equal lengths: the first duplicate wins.
  assert.deepEqual(g.verify(dup, outputs(peakAt(V, 3), dupAfter)), { path: [0, 2], token: 1, kind: "bonus" });
  // Malformed input is refused.
  assert.throws(() => g.verify(tree, outputs(peakAt(V, 3), after([0, 0]))), /6 nodes need 7 target outputs, got 3/);
});

test("greedy verification on a chain keeps the longest prefix equal to the target's argmax", () => {
  const V = 8;
  const rng = new SeededRng(3);
  const g = new GreedyVerifier();
  for (let trial = 0; trial < 300; trial++) {
    const k = trial % 5;
    const p = Array.from({ length: k + 1 }, () => randomDistribution(V, rng, 2));
    // Guesses that match the argmax most of the time, so long acceptances happen.
    const tokens = asTokens(p.slice(0, k).map((d) => (rng.next() < 0.7 ? argmax(d) : Math.floor(rng.next() * V))));
    let accepted = 0;
    while (accepted < k && tokens[accepted] === argmax(p[accepted])) accepted++;
    const v = g.verify(chainTree(tokens), outputs(p[0], p.slice(1)));
    assert.deepEqual(v, { path: Array.from({ length: accepted }, (_, i) => i), token: argmax(p[accepted]), kind: accepted < k ? "recovered" : "bonus" });
  }
});

// ---- Stochastic: losslessness on a Markov-chain target ---------------------------------------

const V = 8;
const N_TOKENS = 3; // committed tokens compared against the exact joint distribution: V^3 = 512 outcomes
const START = 2;

/** Builds the drafter's tree after the last committed token. */
type TreeDrafter = (last: Token, rng: Rng) => DraftTree;

function topTokens(d: Distribution, k: number): Token[] {
  return [...d.keys()].sort((a, b) => d[b] - d[a] || a - b).slice(0, k) as Token[];
}

/** Exact joint distribution of the next n tokens after `start` under transitions P. */
function exactJoint(P: readonly Float32Array[], start: number, n: number): Float64Array {
  let probs = new Float64Array([1]);
  for (let step = 0; step < n; step++) {
    const next = new Float64Array(probs.length * V);
    for (let i = 0; i < probs.length; i++) {
      const last = step === 0 ? start : i % V;
      for (let t = 0; t < V; t++) next[i * V + t] = probs[i] * P[last][t];
    }
    probs = next;
  }
  return probs;
}

/** Target rows with only their top `k` tokens (zeros elsewhere): deterministic guesses often have p = 0. */
function truncateRows(P: readonly Float32Array[], k: number): Float32Array[] {
  return P.map((row) => {
    const keep = new Set<number>(topTokens(row, k));
    const out = row.map((x, i) => (keep.has(i) ? x : 0));
    const s = out.reduce((a, b) => a + b, 0);
    return out.map((x) => x / s);
  });
}

/** Sample the first N_TOKENS committed tokens `samples` times: draft a tree, verify, commit, repeat. */
function committedCounts(P: readonly Float32Array[], drafter: TreeDrafter, verifier: Verifier, samples: number, seed: number) {
  const rng = new SeededRng(seed);
  const counts = new Float64Array(V ** N_TOKENS);
  const out: Token[] = [];
  let deepest = 0;
  for (let s = 0; s < samples; s++) {
    out.length = 0;
    let last = tok(START);
    while (out.length < N_TOKENS) {
      const tree = drafter(last, rng);
      const v = verifier.verify(tree, outputs(P[last], tree.tokens.map((t) => P[t])), rng);
      for (const i of v.path) out.push(tree.tokens[i]);
      out.push(v.token);
      deepest = Math.max(deepest, v.path.length);
      last = out[out.length - 1];
    }
    counts[sequenceIndex(out.slice(0, N_TOKENS), V)]++;
  }
  return { counts, deepest };
}

// Tree drafters over the drafter's own Markov chain Q. Each sibling group is built from the path
// only (never from other branches), so the exactness condition is about the siblings alone.

/** Deterministic: a static shape filled with the top-k of Q after each path. */
const topKDrafter = (Q: readonly Float32Array[], shape: string): TreeDrafter => {
  const compiled = compileTreeChoices(parseTreeChoices(shape));
  const ranked = Q.map((row) => topTokens(row, 4));
  return (last) => treeFromChoices(compiled, (path) => ranked[path.length ? path[path.length - 1] : last]);
};

/** Deterministic with duplicate siblings: candidates [a, a, b, a] (a, b = top-2 of Q). */
const duplicateDrafter = (Q: readonly Float32Array[]): TreeDrafter => {
  const compiled = compileTreeChoices(parseTreeChoices("0;1;2;3;0,0;0,1;1,0;1,1;2,0;0,0,0;0,0,1;1,0,0"));
  const ranked = Q.map((row) => {
    const [a, b] = topTokens(row, 2);
    return [a, a, b, a];
  });
  return (last) => treeFromChoices(compiled, (path) => ranked[path.length ? path[path.length - 1] : last]);
};

/**
 * Sampled children. `branching[d]` children per node at depth d; per sibling group:
 *  - "iid": i.i.d. from q = Q[parent], all recorded with that q (exact);
 *  - "mixed": Q's argmax first (one-hot), then i.i.d. samples from q (exact);
 *  - "without-replacement": distinct samples, each recorded with the leftover q it came from (exact);
 *  - "without-replacement-wrong-q": distinct samples recorded with the original q (NOT exact);
 *  - "iid-sorted": i.i.d. samples reordered most probable first, recorded with q (NOT exact).
 */
type SiblingMode = "iid" | "mixed" | "without-replacement" | "without-replacement-wrong-q" | "iid-sorted";
const sampledDrafter = (Q: readonly Float32Array[], branching: readonly number[] | ((rng: Rng) => number[]), mode: SiblingMode | ((rng: Rng) => SiblingMode)): TreeDrafter => {
  return (last, rng) => {
    const tokens: Token[] = [];
    const parents: number[] = [];
    const q: (Distribution | undefined)[] = [];
    const widths = typeof branching === "function" ? branching(rng) : branching;
    const grow = (parent: number, prev: Token, depth: number) => {
      if (depth >= widths.length) return;
      const m = typeof mode === "function" ? mode(rng) : mode;
      const qRow = Q[prev];
      const group: [Token, Distribution | undefined][] = [];
      if (m === "iid" || m === "mixed") {
        for (let i = 0; i < widths[depth]; i++) group.push(m === "mixed" && i === 0 ? [argmax(qRow), undefined] : [sample(qRow, rng), qRow]);
      } else if (m === "iid-sorted") {
        for (let i = 0; i < widths[depth]; i++) group.push([sample(qRow, rng), qRow]);
        group.sort((a, b) => qRow[b[0]] - qRow[a[0]]);
      } else {
        const left = Float32Array.from(qRow);
        for (let i = 0; i < widths[depth]; i++) {
          const s = left.reduce((a, b) => a + b, 0);
          const cond = left.map((x) => x / s);
          const t = sample(cond, rng);
          group.push([t, m === "without-replacement" ? cond : qRow]);
          left[t] = 0;
        }
      }
      for (const [t, qt] of group) {
        const node = tokens.length;
        tokens.push(t);
        parents.push(parent);
        q.push(qt);
        grow(node, t, depth + 1);
      }
    };
    grow(ROOT, last, 0);
    // Topological order holds: each node is pushed before its subtree.
    return { tokens, parents, q };
  };
};

interface Case {
  name: string;
  P: Float32Array[];
  drafter: TreeDrafter;
}

const setup = new SeededRng(2024);
const P = randomTransitions(V, setup, 2);
const Q = randomTransitions(V, setup, 2);
const Ptrunc = truncateRows(randomTransitions(V, setup, 2), 3);
const Qtrunc = truncateRows(Q, 3);

const randomWidths = (rng: Rng) => Array.from({ length: 1 + Math.floor(rng.next() * 3) }, () => 2 + Math.floor(rng.next() * 3)); // depth 1–3, branching 2–4
const randomMode = (rng: Rng): SiblingMode => (["iid", "mixed", "without-replacement"] as const)[Math.floor(rng.next() * 3)];

const cases: Case[] = [
  { name: "deterministic top-k tree (branching 3/2/2, depth 3)", P, drafter: topKDrafter(Q, "0;1;2;0,0;0,1;1,0;1,1;0,0,0;0,0,1;1,0,0") },
  { name: "deterministic top-k tree, target with zeros (top-3 rows)", P: Ptrunc, drafter: topKDrafter(Q, "0;1;2;3;0,0;0,1;0,2;1,0;0,0,0;0,0,1") },
  { name: "deterministic tree with duplicate siblings [a,a,b,a]", P, drafter: duplicateDrafter(Q) },
  { name: "i.i.d. sampled children (branching 3/2/2)", P, drafter: sampledDrafter(Q, [3, 2, 2], "iid") },
  { name: "i.i.d. sampled children, target with zeros", P: Ptrunc, drafter: sampledDrafter(Q, [4, 2], "iid") },
  { name: "i.i.d. sampled children from a truncated q (top-3 rows: p has mass q never proposes)", P, drafter: sampledDrafter(Qtrunc, [3, 2, 2], "iid") },
  { name: "argmax + i.i.d. samples per node (branching 3/2/2)", P, drafter: sampledDrafter(Q, [3, 2, 2], "mixed") },
  { name: "random shapes (depth 1–3, branching 2–4) and sibling modes", P, drafter: sampledDrafter(Q, randomWidths, randomMode) },
];

const BIG = 100_000;
const BOUND = 0.03; // 512 outcomes: exact sampling gives about 0.018 at 1e5 samples
const FIRST_BOUND = 0.01; // 8 outcomes: exact sampling gives about 0.003

for (const c of cases) {
  test(`tree rejection sampling is lossless: ${c.name}`, (t) => {
    const exact = exactJoint(c.P, START, N_TOKENS);
    const small = committedCounts(c.P, c.drafter, new RejectionSampler(), 2_000, 11);
    const large = committedCounts(c.P, c.drafter, new RejectionSampler(), BIG, 12);
    const tvSmall = totalVariation(small.counts, exact);
    const tvLarge = totalVariation(large.counts, exact);
    assert.ok(large.deepest >= 2, `the test must reach deep acceptances (deepest path ${large.deepest})`);
    // The first committed token alone (V outcomes) has much less sampling noise.
    const first = new Float64Array(V);
    large.counts.forEach((n, i) => (first[Math.floor(i / V ** (N_TOKENS - 1))] += n));
    const tvFirst = totalVariation(first, c.P[START]);
    t.diagnostic(`TV ${tvSmall.toFixed(4)} at 2000 samples, ${tvLarge.toFixed(4)} at ${BIG} (first token alone ${tvFirst.toFixed(4)}); deepest accepted path ${large.deepest}`);
    assert.ok(tvFirst < FIRST_BOUND, `first token: TV ${tvFirst.toFixed(4)} at ${BIG} samples, bound ${FIRST_BOUND}`);
    assert.ok(tvLarge < BOUND, `TV ${tvLarge.toFixed(4)} at ${BIG} samples (${V ** N_TOKENS} outcomes), bound ${BOUND}`);
    assert.ok(tvLarge < tvSmall / 2, `TV must shrink with samples: ${tvSmall.toFixed(4)} → ${tvLarge.toFixed(4)}`);
  });
}

test("tree rejection sampling is reproducible under a seed", () => {
  const d = cases[6].drafter;
  const a = committedCounts(P, d, new RejectionSampler(), 2_000, 42).counts;
  const b = committedCounts(P, d, new RejectionSampler(), 2_000, 42).counts;
  const c = committedCounts(P, d, new RejectionSampler(), 2_000, 43).counts;
  assert.deepEqual([...a], [...b]);
  assert.notDeepEqual([...a], [...c]);
});

/**
 * Speculative sampling on a chain as Leviathan et al. / Chen et al. state it, written out
 * independently: keep x_i with probability min(1, p_i(x_i) / q_i(x_i)) (q one-hot without a
 * recorded q), else draw from norm(max(0, p_i - q_i)); after a fully accepted chain draw from p_k.
 */
function chainSpeculativeSampling(tokens: readonly Token[], q: readonly Distribution[] | undefined, p: readonly Distribution[], rng: Rng): Verdict {
  for (let i = 0; i < tokens.length; i++) {
    const x = tokens[i];
    const qx = q ? q[i][x] : 1;
    if (rng.next() * qx < p[i][x]) continue;
    const r = Float64Array.from(p[i], (pj, j) => Math.max(0, pj - (q ? q[i][j] : j === x ? 1 : 0)));
    return { path: Array.from({ length: i }, (_, j) => j), token: sampleFrom(r.map((v) => v / r.reduce((a, b) => a + b, 0)), rng.next()), kind: "recovered" };
  }
  return { path: Array.from({ length: tokens.length }, (_, j) => j), token: sample(p[tokens.length], rng), kind: "bonus" };
}

test("rejection sampling on a chain makes the decisions of chain speculative sampling", () => {
  const rng = new SeededRng(8);
  const verifier = new RejectionSampler();
  for (let trial = 0; trial < 3_000; trial++) {
    const k = trial % 4;
    const p = Array.from({ length: k + 1 }, () => randomDistribution(V, rng, 2));
    const qs = Array.from({ length: k }, () => randomDistribution(V, rng, 2));
    const oneHot = trial % 2 === 0;
    const tokens = asTokens(qs.map((q) => (oneHot ? argmax(q) : sample(q, rng))));
    const seed = 1000 + trial;
    const want = chainSpeculativeSampling(tokens, oneHot ? undefined : qs, p, new SeededRng(seed));
    const got = verifier.verify(oneHot ? chainTree(tokens) : chainTree(tokens, qs), outputs(p[0], p.slice(1)), new SeededRng(seed));
    assert.deepEqual(got, want, `trial ${trial}`);
  }
});

/** A plausible bug: every sibling is checked against the target's p itself, never the residual. */
class NoResidualSampler implements Verifier {
  readonly name = "no-residual";
  readonly reads = "probabilities";
  verify(tree: DraftTree, out: TargetOutputs, rng: Rng): Verdict {
    const { roots, children } = treeChildren(tree);
    const path: number[] = [];
    let p = out.p[0];
    let kids = roots;
    for (;;) {
      if (kids.length === 0) return { path, token: sample(p, rng), kind: "bonus" };
      const next = kids.find((c) => rng.next() * (tree.q?.[c]?.[tree.tokens[c]] ?? 1) < p[tree.tokens[c]]);
      if (next === undefined) return { path, token: sample(p, rng), kind: "recovered" };
      path.push(next);
      p = out.p[next + 1];
      kids = children[next];
    }
  }
}

test("the TV test catches lossy tree verification", (t) => {
  const exact = exactJoint(P, START, N_TOKENS);
  const N = 30_000;
  const tvOf = (drafter: TreeDrafter, verifier: Verifier) => totalVariation(committedCounts(P, drafter, verifier, N, 5).counts, exact);
  // A verifier that does not residualise p after a rejection.
  const noResidualDet = tvOf(cases[0].drafter, new NoResidualSampler());
  const noResidualIid = tvOf(cases[3].drafter, new NoResidualSampler());
  // A drafter that samples siblings without replacement but records the original q (documented as not exact).
  const wrongQ = tvOf(sampledDrafter(Q, [3, 2, 2], "without-replacement-wrong-q"), new RejectionSampler());
  // I.i.d. samples put most probable first (documented as not exact).
  const sorted = tvOf(sampledDrafter(Q, [3, 2, 2], "iid-sorted"), new RejectionSampler());
  const report = `no-residual (top-k) ${noResidualDet.toFixed(4)}, no-residual (i.i.d.) ${noResidualIid.toFixed(4)}, without replacement with the original q ${wrongQ.toFixed(4)}, sorted i.i.d. ${sorted.toFixed(4)}`;
  t.diagnostic(report);
  for (const tv of [noResidualDet, noResidualIid, wrongQ, sorted]) assert.ok(tv > 2 * BOUND, `lossy verification must be caught: ${report}`);
});
