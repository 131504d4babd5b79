// The EAGLE drafter (src/drafters/eagle.ts, eagleHeads.ts): the EAGLE-2 dynamic tree against a
// brute-force ranking and within every budget, the head's tree mask, greedy equality with plain
// decoding (default family and stories260K, 128 tokens), exact sampling through the tree (total
// variation against the target's exact joint distribution), the same on llama.cpp (near-ties
// aside), and heads for another model refused.
import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import type { Target } from "../src/targets/target.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { dynamicTree, topCandidates, type Candidate } from "../src/drafters/eagle.js";
import { EagleHead, saveEagleHead } from "../src/drafters/eagleHeads.js";
import { nodeDepths, ROOT, validateTree, type DraftTree } from "../src/drafters/draftTree.js";
import { defaultModels } from "../src/defaultModels.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { SeededRng, standardNormal } from "../src/sampling/rng.js";
import { resolveSampling } from "../src/sampling/samplingSettings.js";
import { shapeDistribution } from "../src/sampling/shapeDistribution.js";
import { RejectionSampler } from "../src/verifiers/rejectionSampler.js";
import { TypicalAcceptanceVerifier } from "../src/verifiers/typicalAcceptance.js";
import type { Verifier } from "../src/verifiers/verifier.js";
import { trainEagle } from "../src/train/eagleTrainer.js";
import { EagleModel } from "../src/train/eagleModel.js";

import type { Token } from "../src/types.js";
import { drafterFor } from "./support/methods.js";
import { NEAR_TIE, top2GapAt } from "./support/nearTie.js";
import { randomModel } from "./support/randomModel.js";
import { totalVariation } from "./support/markovModel.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const STORIES = sharedFile("models", "stories260K.gguf");
const CORPUS = readFileSync(sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "utf8").split("\n").filter((l) => l.trim()).slice(0, 120).join("\n");
const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const tmp = mkdtempSync(join(tmpdir(), "specdec-eagle-"));
const family = defaultModels();
let stories: BuiltinTarget;
let storiesHead: string;

before(async () => {
  stories = await BuiltinTarget.load(STORIES);
  // A small head trained for stories260K (not good, but a real one: its guesses are often right).
  const r = await trainEagle(stories, { text: CORPUS }, undefined, { steps: 60, batch: 4, sequences: 60, valSequences: 4, continuation: 48, unroll: 2, lr: 3e-3, evalDepth: 2 });
  storiesHead = join(tmp, "stories260K-eagle.gguf");
  saveEagleHead(storiesHead, r.model.shape, r.model.tensors(), { vocabFingerprint: stories.vocab.fingerprint, name: "stories260K" });
});
after(async () => {
  await stories?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// ---- The dynamic tree ------------------------------------------------------------------------

/** A synthetic head: after a path, k candidates with log-probabilities from a hash of the path (distinct scores). */
function syntheticRanker(k: number, seed: number) {
  const rank = (path: readonly number[]): Candidate[] => {
    const rng = new SeededRng(path.reduce((h, t) => (Math.imul(h, 31) + t + 1) >>> 0, seed));
    const w = Array.from({ length: k }, () => 0.05 + rng.next());
    const z = w.reduce((a, b) => a + b, 0) * (1 + rng.next()); // some mass left for tokens not ranked
    return w.map((x, i) => ({ token: (i * 7 + path.length) as Token, logProb: Math.log(x / z) })).sort((a, b) => b.logProb - a.logProb);
  };
  return rank;
}

function pathOf(tree: DraftTree, node: number): number[] {
  const p: number[] = [];
  for (let i = node; i !== ROOT; i = tree.parents[i]) p.unshift(tree.tokens[i]);
  return p;
}

test("dynamic tree: with unlimited width it keeps exactly the best maxNodes nodes of the whole k-ary tree", () => {
  const k = 3, depth = 4;
  for (const seed of [1, 2, 3]) {
    const rank = syntheticRanker(k, seed);
    // Brute force: every node of the full tree with its cumulative log-probability.
    const all: { path: number[]; score: number }[] = [];
    const grow = (path: number[], score: number) => {
      if (path.length === depth) return;
      for (const c of rank(path)) {
        const p = [...path, c.token];
        all.push({ path: p, score: score + c.logProb });
        grow(p, score + c.logProb);
      }
    };
    grow([], 0);
    all.sort((a, b) => b.score - a.score);
    for (let maxNodes = 1; maxNodes <= 40; maxNodes++) {
      const tree = dynamicTree({ maxNodes, maxDepth: depth }, 1000, rank([]), (nodes, t) => nodes.map((n) => rank(pathOf(t, n))));
      validateTree(tree);
      const got = tree.tokens.map((_, i) => pathOf(tree, i).join(",")).sort();
      const want = all.slice(0, maxNodes).map((x) => x.path.join(",")).sort();
      assert.deepEqual(got, want, `seed ${seed}, ${maxNodes} nodes`);
    }
  }
});

test("dynamic tree: every budget 1..N is respected exactly, parents come before children, siblings best first", () => {
  const rank = syntheticRanker(4, 9);
  for (let maxDepth = 1; maxDepth <= 6; maxDepth++)
    for (let maxNodes = 1; maxNodes <= 30; maxNodes++)
      for (const width of [1, 2, 4]) {
        let expanded = 0;
        const tree = dynamicTree({ maxNodes, maxDepth }, width, rank([]).slice(0, Math.min(4, maxNodes)), (nodes, t) => {
          assert.ok(nodes.length <= width, "expands at most `width` nodes per depth");
          expanded += nodes.length;
          return nodes.map((n) => rank(pathOf(t, n)).slice(0, Math.min(4, maxNodes)));
        });
        validateTree(tree);
        tree.parents.forEach((p, i) => assert.ok(p < i, "parents before children"));
        const depths = nodeDepths(tree);
        assert.ok(Math.max(0, ...depths) <= maxDepth, `depth ${Math.max(...depths)} > ${maxDepth}`);
        // Exactly the budget whenever enough candidates were made (4 at the root, 4 per expansion): never more, never fewer.
        const made = Math.min(4, maxNodes) + 4 * expanded;
        assert.equal(tree.tokens.length, Math.min(maxNodes, made), `${maxNodes} nodes, depth ${maxDepth}, width ${width}`);
        // Siblings in order of their own log-probability (the verifier tries them in index order).
        const byParent = new Map<number, number[]>();
        tree.parents.forEach((p, i) => byParent.set(p, [...(byParent.get(p) ?? []), i]));
        for (const [p, kids] of byParent) {
          const ranks = rank(p === ROOT ? [] : pathOf(tree, p)).map((c) => c.token);
          const pos = kids.map((i) => ranks.indexOf(tree.tokens[i]));
          assert.deepEqual(pos, [...pos].sort((a, b) => a - b));
        }
      }
  assert.deepEqual(dynamicTree({ maxNodes: 0, maxDepth: 3 }, 2, rank([]), () => []), { tokens: [], parents: [] });
});

test("top candidates: the k best logits with their log-softmax (at a temperature), lowest id on ties", () => {
  const logits = Float32Array.from([1, 3, 3, -1, 2]);
  const c = topCandidates(logits, 0, 5, 3);
  assert.deepEqual(c.map((x) => x.token), [1, 2, 4]);
  const z = Math.log([...logits].reduce((s, x) => s + Math.exp(x), 0));
  c.forEach((x) => assert.ok(Math.abs(x.logProb - (logits[x.token] - z)) < 1e-6));
  // At temperature 0.5 the scores are those of softmax(2 · logits): the same order, sharper.
  const z2 = Math.log([...logits].reduce((s, x) => s + Math.exp(2 * x), 0));
  const sharp = topCandidates(logits, 0, 5, 3, 0.5);
  assert.deepEqual(sharp.map((x) => x.token), [1, 2, 4]);
  sharp.forEach((x) => assert.ok(Math.abs(x.logProb - (2 * logits[x.token] - z2)) < 1e-6));
});

// ---- The head --------------------------------------------------------------------------------

test("EAGLE head: a drafted node sees the committed entries and its ancestors only; batch and chunking do not change a bit", async () => {
  const head = EagleHead.load(storiesHead, stories);
  const dim = head.shape.dim, r = new SeededRng(3);
  const feats = Float32Array.from({ length: 12 * dim }, () => standardNormal(r));
  const toks = Int32Array.from({ length: 12 }, (_, i) => (i * 37 + 5) % stories.vocabSize);
  const chain = (n: number) => Int32Array.from({ length: n }, (_, i) => i - 1);
  // Six committed entries in one pass, or in three.
  const a = new Float32Array(6 * dim), b = new Float32Array(6 * dim);
  head.truncate(0);
  head.append(feats, toks, chain(6), 6, a);
  head.commit();
  const drafted = (): Float32Array[] => {
    // Two siblings after the last committed entry (slot 5), then a child of the second.
    const o = new Float32Array(3 * dim);
    head.append(feats.subarray(6 * dim), toks.subarray(6), [5, 5], 2, o);
    head.append(feats.subarray(8 * dim), toks.subarray(8), [7], 1, o.subarray(2 * dim));
    const out = [o.slice(0, dim), o.slice(dim, 2 * dim), o.slice(2 * dim)];
    head.truncate(head.committed);
    return out;
  };
  const together = drafted();
  head.truncate(0);
  for (const [from, n] of [[0, 2], [2, 1], [3, 3]]) {
    head.append(feats.subarray(from * dim), toks.subarray(from), Int32Array.from({ length: n }, (_, i) => from + i - 1), n, b.subarray(from * dim));
    head.commit();
  }
  assert.deepEqual(b, a, "committed entries in one pass or several");
  // The second sibling alone (no first sibling in the cache) gives the same bits.
  const alone = new Float32Array(dim);
  head.append(feats.subarray(7 * dim), toks.subarray(7), [5], 1, alone);
  assert.deepEqual(alone, together[1]);
  // Its child, appended after it with nothing else drafted, too.
  const child = new Float32Array(dim);
  head.append(feats.subarray(8 * dim), toks.subarray(8), [6], 1, child);
  assert.deepEqual(child, together[2]);
  head.truncate(head.committed);
  assert.deepEqual(drafted(), together, "the same draft twice");
  assert.throws(() => head.append(feats, toks, [9], 1, alone), /parent slot of entry 0 must be -1 or an earlier slot/);
  assert.throws(() => head.append(feats, [stories.vocabSize], [5], 1, alone), /outside the vocabulary/);
});

// ---- Greedy equality -------------------------------------------------------------------------

const PROMPTS = [
  "Once upon a time",
  "Lily and Ben went to the park. They saw a big dog.",
  "The sun was hot. Sam wanted ice cream.",
  "Tom had a red ball. He liked to",
];

/**
 * EAGLE's tokens against plain greedy decoding: equal on the built-in engine; on llama.cpp a
 * difference is allowed only where the target's two best tokens nearly tie (batched and
 * one-token passes may round differently there), at most one per run.
 */
async function greedyEquality(target: Target, eagle: string, budgets: { treeNodes: number; draftMax: number }[], t?: TestContext): Promise<number[]> {
  const none = await drafterFor(target, "none");
  const drafter = await drafterFor(target, "eagle", { eagle });
  const taus: number[] = [];
  let differing = 0;
  for (const prompt of PROMPTS) {
    const want = await generate(target, none, { prompt, maxTokens: 128 });
    for (const b of budgets) {
      const got = await generate(target, drafter, { prompt, maxTokens: 128, ...b });
      taus.push(got.stats.tau);
      if (got.tokens.join() === want.tokens.join()) continue;
      const at = got.tokens.findIndex((x, i) => x !== want.tokens[i]);
      assert.equal(target.backend, "llama.cpp", `${JSON.stringify(prompt)} with ${JSON.stringify(b)}: first difference at token ${at}`);
      const gap = await top2GapAt(target, prompt, want.tokens, at < 0 ? got.tokens.length : at);
      t?.diagnostic(`${JSON.stringify(prompt)} with ${JSON.stringify(b)}: first difference at token ${at}, top-2 gap ${gap}`);
      assert.ok(gap < NEAR_TIE, `${JSON.stringify(prompt)} with ${JSON.stringify(b)} differs at token ${at} where the top-2 gap is ${gap} (not a near-tie)`);
      differing++;
    }
  }
  assert.ok(differing <= 1, `${differing} outputs differ from plain decoding: near-ties must be rare`);
  return taus;
}

test("EAGLE at temperature 0 gives exactly the plain greedy tokens: default family (shipped head), 128 tokens, several budgets", async (t) => {
  const target = await BuiltinTarget.load(family.target);
  try {
    const taus = await greedyEquality(target, family.eagle, [{ treeNodes: 1, draftMax: 1 }, { treeNodes: 24, draftMax: 6 }, { treeNodes: 5, draftMax: 8 }]);
    t.diagnostic(`tau per prompt and budget: ${taus.map((x) => x.toFixed(2)).join(" ")}`);
    assert.ok(taus.every((x) => x > 1), "the shipped head must guess right sometimes");
  } finally {
    await target.dispose();
  }
});

test("EAGLE on llama.cpp (hidden states from libllama) gives the plain greedy tokens, the shipped head guessing as well as on the built-in engine", async (t) => {
  const target = await LlamaCppTarget.load(family.target);
  try {
    const taus = await greedyEquality(target, family.eagle, [{ treeNodes: 24, draftMax: 6 }], t);
    t.diagnostic(`tau per prompt: ${taus.map((x) => x.toFixed(2)).join(" ")}`);
    assert.ok(taus.every((x) => x > 1.5), `the shipped head must guess right on llama.cpp too: ${taus.join(" ")}`);
  } finally {
    await target.dispose();
  }
});

test("EAGLE at temperature 0 gives exactly the plain greedy tokens: stories260K, 128 tokens", async (t) => {
  const taus = await greedyEquality(stories, storiesHead, [{ treeNodes: 24, draftMax: 6 }, { treeNodes: 3, draftMax: 3 }]);
  t.diagnostic(`tau: ${taus.map((x) => x.toFixed(2)).join(" ")}`);
  assert.ok(taus.some((x) => x > 1.2), `a trained head must help: ${taus.join(" ")}`);
});

// ---- Sampling through the tree: the target's exact joint distribution -----------------------

test("sampling through the EAGLE tree follows the target's exact joint distribution (tiny random llama, built-in engine)", async (t) => {
  const path = join(tmp, "random.gguf");
  const model = randomModel({ dim: 32, ffn: 64, layers: 1, heads: 2, contextLength: 64, logitScale: 6, seed: 11 });
  model.write(path, GgmlType.F32);
  const target = await BuiltinTarget.load(path);
  try {
    // An oracle head: the target's own block over the token embedding (fc = [I | 0]), so its guesses
    // are nearly the target's ranking (it misses only BOS's key and the output norm) and deep paths get accepted.
    const dim = 32, shape = { dim, vocabSize: target.vocabSize, layers: 1, heads: 2, kvHeads: 2, hidden: 64, ropeBase: 10000, normEps: 1e-5 };
    const tensors = new Map(model.tensors(GgmlType.F32).filter((x) => x.name.startsWith("blk.0.")).map((x) => [`eagle.${x.name}`, new Float32Array(x.data.slice().buffer)]));
    const fc = new Float32Array(dim * 2 * dim);
    for (let i = 0; i < dim; i++) fc[i * 2 * dim + i] = 1;
    tensors.set("eagle.fc.weight", fc).set("eagle.fc.bias", new Float32Array(dim));
    const headPath = join(tmp, "random-eagle.gguf");
    saveEagleHead(headPath, shape, tensors, { vocabFingerprint: target.vocab.fingerprint });
    const drafter = await drafterFor(target, "eagle", { eagle: headPath });
    // Top-3 sampling: 27 possible 3-token continuations, each one's exact probability from the target's passes.
    const sampling = resolveSampling({ temperature: 1, topK: 3 });
    const prompt = target.tokenize("Once upon a time");
    const V = target.vocabSize, N = 3;
    const exact = new Map<string, number>();
    const walk = async (prefix: Token[], prob: number) => {
      if (prefix.length === N) return void exact.set(prefix.join(","), prob);
      await target.reset();
      const out = await target.evaluate([...prompt, ...prefix], { outputs: "last" });
      const p = shapeDistribution(out.probs![0], sampling);
      for (let x = 0; x < V; x++) if (p[x] > 0) await walk([...prefix, x as Token], prob * p[x]);
    };
    await walk([], 1);
    const keys = [...exact.keys()];
    const exactArr = [...keys.map((k) => exact.get(k)!), 0]; // last slot: anything outside the support
    const count = async (samples: number, seed: number, verifier: Verifier = new RejectionSampler()) => {
      const rng = new SeededRng(seed);
      const counts = new Float64Array(keys.length + 1);
      let deepest = 0;
      for (let s = 0; s < samples; s++) {
        const g = await generate(target, drafter, { prompt, maxTokens: N, draftMax: 3, treeNodes: 6, sampling, rng, verifier });
        const i = keys.indexOf(g.tokens.join(","));
        counts[i < 0 ? keys.length : i]++;
        g.stats.acceptanceByPosition.forEach((a, d) => a.accepted > 0 && (deepest = Math.max(deepest, d + 1)));
      }
      return { counts, deepest };
    };
    const small = await count(1_000, 1), large = await count(8_000, 2);
    const tvSmall = totalVariation(small.counts, exactArr), tvLarge = totalVariation(large.counts, exactArr);
    // A lossy verifier through the same trees is caught by the same test.
    const lossy = totalVariation((await count(2_000, 3, new TypicalAcceptanceVerifier())).counts, exactArr);
    t.diagnostic(`${keys.length} outcomes; TV ${tvSmall.toFixed(4)} at 1000 samples, ${tvLarge.toFixed(4)} at 8000 (deepest accepted depth ${large.deepest}); lossy typical acceptance ${lossy.toFixed(4)}`);
    assert.equal(large.counts[keys.length], 0, "every sample is a possible continuation");
    assert.ok(large.deepest >= 2, `the test must reach deep acceptances (deepest ${large.deepest})`);
    assert.ok(tvLarge < 0.03, `TV ${tvLarge.toFixed(4)} at 8000 samples (${keys.length} outcomes), bound 0.03`);
    assert.ok(tvLarge < tvSmall, `TV must shrink with samples: ${tvSmall.toFixed(4)} → ${tvLarge.toFixed(4)}`);
    assert.ok(lossy > 0.06, `a lossy verifier must be caught: TV ${lossy.toFixed(4)}`);
  } finally {
    await target.dispose();
  }
});

// ---- Refusals --------------------------------------------------------------------------------

test("EAGLE heads made for another model are one-line errors; the CLI runs EAGLE on either backend", async () => {
  const m = new EagleModel({ dim: stories.hiddenSize, vocabSize: stories.vocabSize, layers: 1, heads: 8, kvHeads: 4, hidden: 32, ropeBase: 10000, normEps: 1e-5 }, new SeededRng(1), new Float32Array(0), new Float32Array(0));
  const other = join(tmp, "other-vocab.gguf");
  saveEagleHead(other, m.shape, m.tensors(), { vocabFingerprint: "0".repeat(64) });
  await assert.rejects(drafterFor(stories, "eagle", { eagle: other }), /another vocabulary/);
  const wide = join(tmp, "wide.gguf");
  const w = new EagleModel({ ...m.shape, dim: 2 * stories.hiddenSize }, new SeededRng(1), new Float32Array(0), new Float32Array(0));
  saveEagleHead(wide, w.shape, w.tensors(), { vocabFingerprint: stories.vocab.fingerprint });
  await assert.rejects(drafterFor(stories, "eagle", { eagle: wide }), /made for another model/);
  await assert.rejects(drafterFor(stories, "eagle", { eagle: STORIES }), /not an EAGLE head file/);
  // The shipped head is the default family's: refused for stories260K.
  await assert.rejects(drafterFor(stories, "eagle", { eagle: family.eagle }), /another (model|vocabulary)/);
  assert.throws(() => saveEagleHead(other, m.shape, m.tensors(), { vocabFingerprint: "" }), /exist/);

  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, "generate", "--model", STORIES, "--prompt", "hi", ...args], { encoding: "utf8" });
  for (const [args, pattern] of [
    [["--method", "eagle", "--eagle", other], /another vocabulary/],
    [["--method", "eagle", "--eagle", join(tmp, "missing.gguf")], /missing\.gguf/],
    [["--method", "eagle"], /needs its head.*--eagle FILE/],
    [["--method", "eagle", "--eagle", storiesHead, "--eagle-top-k", "0"], /--eagle-top-k/],
  ] as const) {
    const r = cli(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  for (const backend of ["llama.cpp", "builtin"]) {
    const ok = cli("--backend", backend, "--method", "eagle", "--eagle", storiesHead, "--max-tokens", "20", "--json");
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).method, "eagle");
  }
  // Without --eagle and without --model: the default family's own head.
  const def = spawnSync(process.execPath, [BIN, "generate", "--method", "eagle", "--prompt", "Once upon a time", "--max-tokens", "24"], { encoding: "utf8" });
  assert.equal(def.status, 0, def.stderr);
  assert.match(def.stderr, /method=eagle .*tau=/);
});
