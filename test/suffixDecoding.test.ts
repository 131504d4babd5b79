// Suffix decoding's drafter: the trees it proposes, its budget, its cache's life cycle, and
// sampling through it (the committed tokens' joint distribution against the exact one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { generate, speculativeStream } from "../src/decode/speculativeDecode.js";
import { isChain, nodeDepths, ROOT, treeChildren, validateTree, type DraftTree } from "../src/drafters/draftTree.js";
import type { DraftBudget, DrafterStart } from "../src/drafters/drafter.js";
import { sharedSuffixCache, SuffixDrafter, suffixMethod } from "../src/drafters/suffix.js";
import { SuffixCache } from "../src/drafters/suffixCache.js";
import { createDrafter } from "../src/methods.js";
import { SeededRng } from "../src/sampling/rng.js";
import { resolveSampling } from "../src/sampling/samplingSettings.js";
import { sample } from "../src/sampling/shapeDistribution.js";
import { asTokens, type Rng, type Token } from "../src/types.js";
import type { TargetOutputs, Verdict, Verifier } from "../src/verifiers/verifier.js";
import { RecordingDrafter } from "./support/recorder.js";
import { exactSequenceDistribution, MarkovTarget, randomTransitions, sequenceIndex, totalVariation } from "./support/markovModel.js";

const start = (prompt: readonly Token[]): DrafterStart => ({ prompt, sampling: resolveSampling({}), rng: new SeededRng(0) });

test("suffix drafter: the continuations of the longest repeated suffix, most frequent first, within its limits", () => {
  // "5 6 7" ends the context and occurred three times before: followed by 8 0, 9 0 and 8 1.
  const ctx = asTokens([5, 6, 7, 8, 0, 5, 6, 7, 9, 0, 5, 6, 7, 8, 1, 5, 6, 7]);
  const propose = (options: ConstructorParameters<typeof SuffixDrafter>[1], budget: DraftBudget) => {
    const d = new SuffixDrafter(undefined, options);
    d.begin(start(ctx));
    return d.propose(ctx, budget);
  };
  // 8 (2 of 3 occurrences) before 9; below 8, the newest occurrence's 1 before 0.
  assert.deepEqual(propose({ specFactor: 4 }, { maxNodes: 10, maxDepth: 2 }), { tokens: [8, 9, 1, 0, 0], parents: [ROOT, ROOT, 0, 1, 0] });
  // Three matched tokens allow three nodes at specFactor 1: the first three of the same order.
  assert.deepEqual(propose({ specFactor: 1 }, { maxNodes: 10, maxDepth: 2 }), { tokens: [8, 9, 1], parents: [ROOT, ROOT, 0] });
  // One path: the chain through the most frequent child at each depth.
  assert.deepEqual(propose({ specFactor: 4, candidates: 1 }, { maxNodes: 10, maxDepth: 3 }), { tokens: [8, 1, 5], parents: [ROOT, 0, 1] });
  assert.deepEqual(propose({ specFactor: 4, treeAttention: false }, { maxNodes: 10, maxDepth: 3 }), { tokens: [8, 1, 5], parents: [ROOT, 0, 1] });
  // Two paths at most.
  assert.deepEqual(propose({ specFactor: 4, candidates: 2 }, { maxNodes: 10, maxDepth: 2 }), { tokens: [8, 9, 1, 0], parents: [ROOT, ROOT, 0, 1] });
  // A node needs half the occurrences here: only 8.
  assert.deepEqual(propose({ specFactor: 4, minProbability: 0.5 }, { maxNodes: 10, maxDepth: 2 }), { tokens: [8], parents: [ROOT] });
  // Nothing repeats: no guess.
  assert.deepEqual(propose({}, { maxNodes: 10, maxDepth: 4 }), propose({}, { maxNodes: 10, maxDepth: 4 }));
  const fresh = new SuffixDrafter(undefined);
  fresh.begin(start(asTokens([1, 2, 3])));
  assert.deepEqual(fresh.propose(asTokens([1, 2, 3]), { maxNodes: 10, maxDepth: 4 }).tokens, []);
  // Text that repeats itself is continued past its end (period 2 here); the match (3 4 3 4)
  // allows specFactor * 4 guesses.
  const loop = asTokens([3, 4, 3, 4, 3, 4]);
  const d = new SuffixDrafter(undefined, { candidates: 1 });
  d.begin(start(loop));
  assert.deepEqual(d.propose(loop, { maxNodes: 6, maxDepth: 6 }).tokens, [3, 4, 3, 4]);
  const d2 = new SuffixDrafter(undefined, { candidates: 1, specFactor: 2 });
  d2.begin(start(loop));
  assert.deepEqual(d2.propose(loop, { maxNodes: 6, maxDepth: 6 }).tokens, [3, 4, 3, 4, 3, 4]);
  assert.throws(() => new SuffixDrafter(undefined, { candidates: 0 }), /candidates must be an integer >= 1/);
  assert.throws(() => new SuffixDrafter(undefined, { minProbability: 2 }), /minProbability must be between 0 and 1/);
});

/** A random context with much repetition: pieces of a few phrases. */
function repetitiveText(rng: Rng, n: number, vocab: number): Token[] {
  const phrases = Array.from({ length: 6 }, () => Array.from({ length: 3 + Math.floor(rng.next() * 6) }, () => Math.floor(rng.next() * vocab)));
  const out: number[] = [];
  while (out.length < n) {
    const p = phrases[Math.floor(rng.next() * phrases.length)];
    out.push(...p.slice(0, 1 + Math.floor(rng.next() * p.length)));
    if (rng.next() < 0.3) out.push(Math.floor(rng.next() * vocab));
  }
  return asTokens(out.slice(0, n));
}

test("suffix drafter: every proposal is a valid tree within its budget, the best nodes first (a smaller budget cuts the last ones)", () => {
  const rng = new SeededRng(7);
  const cache = new SuffixCache(2000);
  for (let i = 0; i < 20; i++) cache.add(repetitiveText(rng, 80, 12));
  let branched = 0, cut = 0;
  for (let trial = 0; trial < 300; trial++) {
    const ctx = repetitiveText(rng, 20 + Math.floor(rng.next() * 200), 12);
    const candidates = 1 + Math.floor(rng.next() * 6);
    const treeAttention = rng.next() < 0.8;
    const d = new SuffixDrafter(trial % 2 === 0 ? cache : undefined, { candidates, specFactor: 1 + Math.floor(rng.next() * 4), treeAttention });
    d.begin(start(ctx));
    const maxDepth = 1 + Math.floor(rng.next() * 10);
    const maxNodes = maxDepth + Math.floor(rng.next() * 30);
    const tree = d.propose(ctx, { maxNodes, maxDepth });
    validateTree(tree, 12);
    assert.ok(tree.tokens.length <= maxNodes, `${tree.tokens.length} nodes > ${maxNodes}`);
    if (tree.tokens.length > 0) assert.ok(Math.max(...nodeDepths(tree)) <= maxDepth);
    if (!treeAttention || candidates === 1) assert.ok(isChain(tree), "one path where there is no tree attention");
    const { roots, children } = treeChildren(tree);
    const leaves = children.filter((c) => c.length === 0).length;
    assert.ok(leaves <= (treeAttention ? candidates : 1), `${leaves} leaves, ${candidates} candidates`);
    // No token twice among siblings.
    for (const group of [roots, ...children]) assert.equal(new Set(group.map((i) => tree.tokens[i])).size, group.length);
    if (roots.length > 1) branched++;
    // With fewer nodes allowed, the proposal is the first nodes of this one (one source: with
    // the cache too, the other source may win at another size).
    if (!d.cache && tree.tokens.length > 1) {
      const k = 1 + Math.floor(rng.next() * (tree.tokens.length - 1));
      const small = d.propose(ctx, { maxNodes: k, maxDepth: Math.min(maxDepth, k) });
      assert.deepEqual(small, { tokens: tree.tokens.slice(0, k), parents: tree.parents.slice(0, k) });
      cut++;
    }
  }
  assert.ok(cut > 50, `the test must cut trees (${cut})`);
  assert.ok(branched > 20, `the test must see branching trees (${branched})`);
});

test("suffix drafter: a finished generation goes into the cache once, at the next begin or at dispose; an aborted one too", async () => {
  const P = randomTransitions(6, new SeededRng(3), 3);
  const target = new MarkovTarget(P, 1 << 20, true);
  const cache = new SuffixCache(10_000);
  const drafter = new SuffixDrafter(cache);
  const prompt = asTokens([0, 1, 2, 0, 1]);
  const a = await generate(target, drafter, { prompt, maxTokens: 20 });
  assert.equal(cache.stats().documents, 0, "a generation's own text is not in the cache while it may still go on");
  const b = await generate(target, drafter, { prompt, maxTokens: 20 });
  assert.deepEqual(cache.documents(), [[...prompt, ...a.tokens]], "the first generation, added by the second begin");
  assert.deepEqual(b.tokens, a.tokens, "greedy: the same tokens again");
  assert.ok(b.stats.tau > a.stats.tau, `the second time the continuation is in the cache: tau ${a.stats.tau} -> ${b.stats.tau}`);
  await drafter.dispose();
  await drafter.dispose();
  assert.equal(cache.stats().documents, 2, "dispose adds the last generation, once");
  // An aborted generation leaves what it committed.
  const abort = new AbortController();
  const stream = speculativeStream(target, drafter, { prompt, maxTokens: 100, signal: abort.signal, sampling: { temperature: 1, seed: 4 } });
  let steps = 0;
  let r;
  while (!(r = await stream.next()).done) if (++steps === 3) abort.abort();
  assert.equal(r.value.stopReason, "abort");
  drafter.begin(start(prompt));
  const docs = cache.documents();
  assert.deepEqual(docs[docs.length - 1], [...prompt, ...r.value.tokens]);
  // A begin without any generation adds its prompt once; the store shares one cache per cap.
  drafter.begin(start(asTokens([5])));
  await drafter.dispose();
  assert.deepEqual(cache.documents().slice(-2), [prompt, [5]]);
  const store = new Map<string, unknown>();
  const ctx = { target, loadModel: () => Promise.reject(new Error("unused")), store };
  const d1 = (await createDrafter("suffix", ctx)) as SuffixDrafter;
  const d2 = (await createDrafter("suffix", ctx)) as SuffixDrafter;
  const d3 = (await createDrafter("suffix", ctx, { suffixCacheTokens: 500 })) as SuffixDrafter;
  assert.equal(d1.cache, d2.cache);
  assert.notEqual(d1.cache, d3.cache);
  assert.equal(d3.cache?.capTokens, 500);
  assert.equal(((await createDrafter("suffix", ctx, { suffixCacheTokens: 0 })) as SuffixDrafter).cache, undefined);
  assert.equal(sharedSuffixCache(store, 500), d3.cache);
  assert.match(drafter.describe(), /proposals: \d+ from the cache \(\d+ tokens accepted\), \d+ from the request .* requests, \d+ tokens \(\d+ indexed, cap 10000/);
  assert.deepEqual(suffixMethod.requires!({}), [], "trees where the target has tree attention, chains elsewhere: nothing required");
});

test("suffix drafters sharing a cache see each other's finished generations, also across evictions", () => {
  const cache = new SuffixCache(40); // segments of 10 tokens: one document each below
  const a = new SuffixDrafter(cache, { candidates: 1 });
  const b = new SuffixDrafter(cache, { candidates: 1 });
  const ctx = asTokens([1, 2, 3]);
  a.begin(start(ctx));
  const budget = { maxNodes: 8, maxDepth: 8 };
  assert.deepEqual(a.propose(ctx, budget).tokens, [], "nothing known yet");
  // b finishes a generation that continues 1 2 3 differently each time; a, still generating,
  // drafts from the newest one (each in a segment of its own; the oldest are evicted).
  for (let k = 0; k < 8; k++) {
    b.begin(start(asTokens([1, 2, 3, 10 + k, 20 + k, 30 + k, 40 + k, 50 + k, 60 + k, 70 + k])));
    b.begin(start(asTokens([99])));
    const docs = cache.documents();
    assert.ok(cache.stats().indexedTokens <= 40);
    const newest = docs.filter((d) => d[0] === 1).at(-1)!;
    assert.deepEqual(a.propose(ctx, budget).tokens, newest.slice(3, 6), `after document ${k}`);
  }
  assert.ok(cache.stats().evicted > 0);
});

// ---- Sampling through suffix drafts: exact ----------------------------------------------------

const V = 5;
const N = 3; // committed tokens compared: V^3 = 125 outcomes

async function committedCounts(samples: number, seed: number, temperature: number, verifier?: Verifier) {
  const P = randomTransitions(V, new SeededRng(11), 2);
  const target = new MarkovTarget(P, 1 << 20, true);
  // A small cap: the cache evicts all the time, and drafts come from recent samples.
  const drafter = new RecordingDrafter(new SuffixDrafter(new SuffixCache(600), { specFactor: 2, maxOccurrences: 16 }));
  const sampling = resolveSampling({ temperature, topK: 0 });
  const rng = new SeededRng(seed);
  const prompt = asTokens([0, 1, 2, 0, 1]);
  const counts = new Float64Array(V ** N);
  for (let s = 0; s < samples; s++) {
    const r = await generate(target, drafter, { prompt, maxTokens: N + 1, draftMax: N, sampling, rng, verifier });
    counts[sequenceIndex(r.tokens.slice(0, N), V)]++;
  }
  return { counts, exact: exactSequenceDistribution(P, prompt[prompt.length - 1], N, sampling), drafter };
}

// Exact sampling gives TV about 0.019 at 4e4 samples and 0.027 at 2e4 (125 outcomes).
for (const [temperature, samples, bound] of [[1, 40_000, 0.03], [0.7, 20_000, 0.04]]) {
  test(`sampling through suffix trees gives the target's joint distribution (rejection sampling, temperature ${temperature})`, async (t) => {
    const small = await committedCounts(2_000, 1, temperature);
    const large = await committedCounts(samples, 2, temperature);
    const tvSmall = totalVariation(small.counts, small.exact);
    const tvLarge = totalVariation(large.counts, large.exact);
    const s = large.drafter.inner.stats();
    t.diagnostic(`TV ${tvSmall.toFixed(4)} at 2000 samples, ${tvLarge.toFixed(4)} at ${samples}; ${large.drafter.branched} branching proposals, deepest accepted path ${large.drafter.deepest}; ${s.fromCache} of ${s.proposals} proposals from the cache`);
    assert.ok(large.drafter.deepest >= 2 && large.drafter.branched > 1000 && s.fromCache > 1000 && s.fromRequest > 100, "the test must exercise trees, deep acceptances and both sources");
    assert.ok(tvLarge < bound, `TV ${tvLarge.toFixed(4)} at ${samples} samples, bound ${bound}`);
    assert.ok(tvLarge < tvSmall / 2, `TV must shrink with samples: ${tvSmall.toFixed(4)} -> ${tvLarge.toFixed(4)}`);
  });
}

test("the same test catches a lossy verifier (every guess on the first path accepted)", async () => {
  const acceptFirstPath: Verifier = {
    name: "accept-first-path",
    reads: "probabilities",
    verify(tree: DraftTree, out: TargetOutputs, rng: Rng): Verdict {
      const path: number[] = [];
      let kids = treeChildren(tree).roots;
      while (kids.length > 0) {
        path.push(kids[0]);
        kids = treeChildren(tree).children[kids[0]];
      }
      const last = path.length === 0 ? 0 : path[path.length - 1] + 1;
      return { path, token: sample(out.p[last], rng), kind: "bonus" };
    },
  };
  const { counts, exact } = await committedCounts(5_000, 3, 1, acceptFirstPath);
  const tv = totalVariation(counts, exact);
  assert.ok(tv > 0.1, `a lossy verifier must be caught: TV ${tv.toFixed(4)}`);
});
