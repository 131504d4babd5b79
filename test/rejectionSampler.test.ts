import { test } from "node:test";
import assert from "node:assert/strict";
import { generate } from "../src/decode/speculativeDecode.js";
import { SeededRng } from "../src/sampling/rng.js";
import { resolveSampling } from "../src/sampling/samplingSettings.js";
import { chainTree, type DraftTree } from "../src/drafters/draftTree.js";
import type { Rng, Token } from "../src/types.js";
import type { TargetOutputs, Verdict, Verifier } from "../src/verifiers/verifier.js";
import { RejectionSampler } from "../src/verifiers/rejectionSampler.js";
import { argmax, sample } from "../src/sampling/shapeDistribution.js";
import { exactSequenceDistribution, MarkovDrafter, MarkovTarget, randomDistribution, randomTransitions, sequenceIndex, totalVariation } from "./support/markovModel.js";

const V = 10;

// Position-independent check of the verifier alone: with fixed p_i and drafts x_i ~ q_i drawn
// independently, the token committed at position j (given j is reached) must follow p_j.
function verifierCounts(draftLen: number, oneHot: boolean, samples: number, seed: number) {
  const setup = new SeededRng(1000 + draftLen);
  const p = Array.from({ length: draftLen + 1 }, () => randomDistribution(V, setup, 3));
  const q = Array.from({ length: draftLen }, () => randomDistribution(V, setup, 3));
  const rng = new SeededRng(seed);
  const sampler = new RejectionSampler();
  const counts = Array.from({ length: draftLen + 1 }, () => new Float64Array(V));
  for (let s = 0; s < samples; s++) {
    // A deterministic drafter always proposes the same guesses (one-hot q).
    const tokens = q.map((qi, i) => (oneHot ? ((i * 3 + 1) % V) : sample(qi, rng)) as Token);
    const v = sampler.verify(oneHot ? chainTree(tokens) : chainTree(tokens, q), { argmax: p.map((d) => argmax(d)), p }, rng);
    for (let j = 0; j < v.path.length; j++) counts[j][tokens[j]]++;
    counts[v.path.length][v.token]++;
  }
  return { p, counts };
}

for (const oneHot of [false, true]) {
  for (const draftLen of [1, 2, 3]) {
    test(`rejection sampling reproduces p at every draft position (k=${draftLen}, ${oneHot ? "one-hot q" : "random q"})`, () => {
      const tvAt: number[] = [];
      for (const n of [1_000, 10_000, 100_000]) {
        const { p, counts } = verifierCounts(draftLen, oneHot, n, 7);
        // Position 0 is always reached; later positions only sometimes, so they have fewer samples.
        tvAt.push(totalVariation(counts[0], p[0]));
        if (n === 100_000) {
          for (let j = 0; j <= draftLen; j++) {
            const reached = counts[j].reduce((a, b) => a + b, 0);
            if (reached < 5_000) continue; // too rarely reached for a tight bound
            const tv = totalVariation(counts[j], p[j]);
            assert.ok(tv < 0.03, `position ${j}: TV ${tv.toFixed(4)} over ${reached} samples`);
          }
        }
      }
      assert.ok(tvAt[2] < 0.01, `TV at 1e5 samples is ${tvAt[2].toFixed(4)}, bound 0.01`);
      assert.ok(tvAt[2] < tvAt[0], `TV must shrink with samples: ${tvAt.map((x) => x.toFixed(4)).join(" → ")}`);
    });
  }
}

test("rejection sampling is reproducible under a seed", () => {
  const a = verifierCounts(3, false, 2_000, 42).counts.map((c) => [...c]);
  const b = verifierCounts(3, false, 2_000, 42).counts.map((c) => [...c]);
  const c = verifierCounts(3, false, 2_000, 43).counts.map((c) => [...c]);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

// The whole loop on a Markov-chain target: speculative sampling with a different Markov drafter
// must give 3-token continuations with exactly the target's joint distribution.
async function loopCounts(samples: number, verifier: Verifier | undefined, deterministic = false, temperature = 1) {
  const setup = new SeededRng(99);
  const P = randomTransitions(6, setup, 2);
  const Q = randomTransitions(6, setup, 2);
  const target = new MarkovTarget(P);
  const drafter = new MarkovDrafter(Q, deterministic);
  const sampling = resolveSampling({ temperature, topK: 0 });
  const counts = new Float64Array(6 ** 3);
  const rng = new SeededRng(5);
  for (let s = 0; s < samples; s++) {
    const r = await generate(target, drafter, { prompt: [2 as Token], maxTokens: 3, draftMax: 3, sampling, rng, verifier });
    counts[sequenceIndex(r.tokens, 6)]++;
  }
  return { counts, exact: exactSequenceDistribution(P, 2, 3, sampling) };
}

test("speculative sampling loop: 3-token continuations follow the target's joint distribution", async () => {
  const small = await loopCounts(2_000, undefined);
  const large = await loopCounts(60_000, undefined);
  const tvSmall = totalVariation(small.counts, small.exact);
  const tvLarge = totalVariation(large.counts, large.exact);
  assert.ok(tvLarge < 0.03, `TV ${tvLarge.toFixed(4)} at 6e4 samples (216 outcomes), bound 0.03`);
  assert.ok(tvLarge < tvSmall, `TV must shrink: ${tvSmall.toFixed(4)} → ${tvLarge.toFixed(4)}`);
});

test("speculative sampling loop with a deterministic drafter and temperature 0.7 is exact too", async () => {
  const { counts, exact } = await loopCounts(60_000, undefined, true, 0.7);
  const tv = totalVariation(counts, exact);
  assert.ok(tv < 0.03, `TV ${tv.toFixed(4)}`);
});

test("the TV test detects a lossy verifier (accept every guess)", async () => {
  const acceptAll: Verifier = {
    name: "accept-all",
    reads: "probabilities",
    verify(tree: DraftTree, out: TargetOutputs, rng: Rng): Verdict {
      const k = tree.tokens.length;
      return { path: Array.from({ length: k }, (_, i) => i), token: sample(out.p[k], rng), kind: "bonus" };
    },
  };
  const { counts, exact } = await loopCounts(20_000, acceptAll);
  const tv = totalVariation(counts, exact);
  assert.ok(tv > 0.1, `a lossy verifier must be caught: TV ${tv.toFixed(4)}`);
});
