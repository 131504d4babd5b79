// Methods through the llama.cpp backend beyond greedy equality (test/greedyLossless.test.ts):
// stochastic verification reproduces the target's distribution, and Medusa heads trained on the
// built-in engine work as well on llama.cpp's hidden states.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "../src/decode/speculativeDecode.js";
import { defaultModels } from "../src/defaultModels.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { SeededRng } from "../src/sampling/rng.js";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import type { Target } from "../src/targets/target.js";
import type { Token } from "../src/types.js";
import { TypicalAcceptanceVerifier } from "../src/verifiers/typicalAcceptance.js";
import { totalVariation } from "./support/markovModel.js";
import { drafterFor } from "./support/methods.js";
import { randomModel } from "./support/randomModel.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-llamacpp-methods-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- stochastic verification: total variation on a 6-token vocabulary ----

const V = 6; // <unk>, <s>, </s> (end of generation), ▁a, ▁b, ▁c
const LEN = 3; // continuations of at most 3 tokens (shorter when </s> is sampled)
const PROMPT = [1, 3, 4, 5, 3, 4] as Token[];
const SAMPLING = { temperature: 1, topK: 0, topP: 1, minP: 0 };

/** Index of a continuation: tokens in base V after a leading 1 (so lengths differ too). */
const outcome = (tokens: readonly number[]) => tokens.reduce((i, t) => i * V + t, 1);
const OUTCOMES = outcome(Array(LEN).fill(V - 1)) + 1;

/** The exact distribution of continuations, from the target's own next-token probabilities (one token per pass). */
async function exactContinuations(target: Target): Promise<Float64Array> {
  const exact = new Float64Array(OUTCOMES);
  const walk = async (seq: Token[], prob: number, generated: number[]) => {
    if (generated.length === LEN) {
      exact[outcome(generated)] += prob;
      return;
    }
    await target.reset();
    let p!: Float32Array;
    for (const t of seq) p = (await target.evaluate([t])).probs![0];
    for (let t = 0; t < V; t++) {
      if (p[t] === 0) continue;
      if (target.eogTokens.has(t as Token)) exact[outcome(generated)] += prob * p[t];
      else await walk([...seq, t as Token], prob * p[t], [...generated, t]);
    }
  };
  await walk(PROMPT, 1, []);
  return exact;
}

async function sampledContinuations(target: Target, method: string, samples: number, options: Parameters<typeof drafterFor>[2] = {}, typical = false): Promise<Float64Array> {
  const drafter = await drafterFor(target, method, options);
  const counts = new Float64Array(OUTCOMES);
  const rng = new SeededRng(17);
  try {
    for (let s = 0; s < samples; s++) {
      const r = await generate(target, drafter, { prompt: PROMPT, maxTokens: LEN, draftMax: LEN, sampling: SAMPLING, rng, verifier: typical ? new TypicalAcceptanceVerifier() : undefined });
      counts[outcome(r.tokens)]++;
    }
  } finally {
    await drafter.dispose?.();
  }
  return counts;
}

test("stochastic verification through llama.cpp (a draft model; tree prompt lookup) reproduces the target's distribution of continuations", { timeout: 600_000 }, async (t) => {
  const targetPath = join(dir, "tiny-target.gguf"), draftPath = join(dir, "tiny-draft.gguf");
  randomModel({ vocab: V, dim: 64, ffn: 128, layers: 2, logitScale: 1, seed: 3 }).write(targetPath, GgmlType.F32);
  randomModel({ vocab: V, dim: 64, ffn: 128, layers: 2, logitScale: 1, seed: 4 }).write(draftPath, GgmlType.F32);
  const target = await LlamaCppTarget.load(targetPath);
  try {
    const exact = await exactContinuations(target);
    assert.ok(Math.abs(exact.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    // The distribution is neither flat nor a point (a test with teeth needs both).
    const top = Math.max(...exact), support = exact.filter((p) => p > 1e-3).length;
    assert.ok(top < 0.5 && support > 20, `top outcome ${top}, ${support} outcomes above 1e-3`);

    const N = 4_000;
    const plain = totalVariation(await sampledContinuations(target, "none", N), exact);
    const draft = totalVariation(await sampledContinuations(target, "draft", N, { draftModel: draftPath }), exact);
    const tree = totalVariation(await sampledContinuations(target, "prompt-lookup", N, { candidates: 3, ngramMin: 1 }), exact);
    const draftSmall = totalVariation(await sampledContinuations(target, "draft", N / 10, { draftModel: draftPath }), exact);
    const lossy = totalVariation(await sampledContinuations(target, "draft", N, { draftModel: draftPath }, true), exact);
    t.diagnostic(`TV vs exact over ${support} likely outcomes, ${N} samples: plain sampling ${plain.toFixed(4)}, draft ${draft.toFixed(4)} (${draftSmall.toFixed(4)} at ${N / 10}), tree prompt lookup ${tree.toFixed(4)}, typical acceptance (lossy) ${lossy.toFixed(4)}`);
    // Sampling noise at this N is about plain's TV: speculation must be as close as plain
    // sampling is, shrink with samples, and the lossy verifier must be caught.
    for (const [name, tv] of [["draft", draft], ["tree prompt lookup", tree]] as const) assert.ok(tv < Math.max(0.04, 1.5 * plain), `${name}: TV ${tv} (plain sampling ${plain})`);
    assert.ok(draft < draftSmall, `TV must shrink with samples: ${draftSmall} -> ${draft}`);
    assert.ok(lossy > 2 * Math.max(plain, draft), `typical acceptance must be detected: TV ${lossy}`);
  } finally {
    await target.dispose();
  }
});

// ---- Medusa on llama.cpp's hidden states ----

test("Medusa heads (trained on the built-in engine) reach on llama.cpp a tau within 5% of the built-in engine's", { timeout: 300_000 }, async (t) => {
  const family = defaultModels();
  const prompts = ["Once upon a time", "Tom and his dog went to the park. They played with a ball.", "Lily liked to draw. One day she drew a big red sun. Her mom said", "The sun was hot. Sam wanted ice cream."];
  const taus: Record<string, number[]> = {};
  for (const [name, load] of [["builtin", () => BuiltinTarget.load(family.target)], ["llama.cpp", () => LlamaCppTarget.load(family.target)]] as const) {
    const target: Target = await load();
    try {
      const drafter = await drafterFor(target, "medusa", { medusa: family.medusa });
      taus[name] = [];
      for (const prompt of prompts) taus[name].push((await generate(target, drafter, { prompt, maxTokens: 128 })).stats.tau);
    } finally {
      await target.dispose();
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const b = mean(taus.builtin), l = mean(taus["llama.cpp"]);
  t.diagnostic(`Medusa tau: built-in ${taus.builtin.map((x) => x.toFixed(3)).join(" ")} (mean ${b.toFixed(3)}), llama.cpp ${taus["llama.cpp"].map((x) => x.toFixed(3)).join(" ")} (mean ${l.toFixed(3)})`);
  assert.ok(b > 1.5, `Medusa tau on the built-in engine ${b}: the heads do not work at all`);
  assert.ok(Math.abs(l - b) <= 0.05 * b, `Medusa tau on llama.cpp ${l} vs built-in ${b}`);
});
