import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { PromptLookupDrafter } from "../src/drafters/promptLookup.js";
import { LookaheadDrafter } from "../src/drafters/lookahead.js";
import { drafterFor } from "./support/methods.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { asTokens } from "../src/types.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const PROMPTS = [
  "Once upon a time",
  "Tom and his dog went to the park. They played with a ball. Tom threw the ball and the dog ran.\n\nTom and his dog went to the park.",
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. Lily\'s mom said, "Be careful, Lily!"\n\nOnce upon a time, there was a little girl named Lily.',
];

let target: BuiltinTarget;
before(async () => {
  target = await BuiltinTarget.load(MODEL);
});
after(async () => target?.dispose());

test("tree prompt lookup merges the continuations of several matches, shared prefixes once", async () => {
  const d = new PromptLookupDrafter({ ngramMax: 2, ngramMin: 1, candidates: 4 });
  d.begin();
  // "5 6" is followed by 7 8, by 7 9 and by 1 2: one tree 7→{8, 9}, 1→2.
  const ctx = asTokens([5, 6, 7, 8, 0, 5, 6, 7, 9, 0, 5, 6, 1, 2, 0, 5, 6]);
  const tree = d.propose(ctx, { maxNodes: 10, maxDepth: 2 });
  assert.deepEqual(tree.tokens, [1, 2, 7, 9, 8]);
  assert.deepEqual(tree.parents, [-1, 0, -1, 2, 2]);
  const small = d.propose(ctx, { maxNodes: 3, maxDepth: 1 });
  assert.deepEqual(small.tokens, [1, 7]);
});

test("tree prompt lookup at temperature 0 gives exactly the plain greedy tokens (builtin engine)", async () => {
  const none = await drafterFor(target, "none");
  let treeCalls = 0, chainCalls = 0;
  for (const prompt of PROMPTS) {
    const want = await generate(target, none, { prompt, maxTokens: 128 });
    for (const candidates of [2, 4, 8]) {
      const drafter = await drafterFor(target, "prompt-lookup", { candidates });
      const got = await generate(target, drafter, { prompt, maxTokens: 128, draftMax: 6 });
      assert.deepEqual(got.tokens, want.tokens, `candidates ${candidates} on ${JSON.stringify(prompt)}`);
      if (candidates === 8) treeCalls += got.stats.targetCalls;
    }
    const chain = await generate(target, await drafterFor(target, "prompt-lookup"), { prompt, maxTokens: 128, draftMax: 6 });
    chainCalls += chain.stats.targetCalls;
  }
  // More candidates per position can only help a greedy walk down the tree.
  assert.ok(treeCalls <= chainCalls, `tree needed ${treeCalls} target passes, the chain ${chainCalls}`);
});

test("tree prompt lookup when sampling: reproducible under a seed", async () => {
  const drafter = await drafterFor(target, "prompt-lookup", { candidates: 4 });
  const run = (seed: number) => generate(target, drafter, { prompt: PROMPTS[1], maxTokens: 64, draftMax: 4, sampling: { temperature: 0.8, seed } });
  const a = await run(5), b = await run(5), c = await run(6);
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
});

test("tree prompt lookup on the llama.cpp backend (tree passes in one llama_decode): the plain greedy tokens (library and CLI)", async () => {
  const llama = await LlamaCppTarget.load(MODEL);
  try {
    const none = await drafterFor(llama, "none"), tree = await drafterFor(llama, "prompt-lookup", { candidates: 4 });
    for (const prompt of PROMPTS) {
      const want = await generate(llama, none, { prompt, maxTokens: 128 });
      const got = await generate(llama, tree, { prompt, maxTokens: 128, draftMax: 4 });
      assert.deepEqual(got.tokens, want.tokens, JSON.stringify(prompt));
    }
  } finally {
    await llama.dispose();
  }
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--model", MODEL, "--backend", "llama.cpp", "--candidates", "4", "--prompt", PROMPTS[2], "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout).tokens.length > 0);
});

test("look-ahead decoding at temperature 0 gives exactly the plain greedy tokens, W,N,G settings", async () => {
  const none = await drafterFor(target, "none");
  for (const prompt of PROMPTS) {
    const want = await generate(target, none, { prompt, maxTokens: 128 });
    for (const lookahead of [{ window: 5, ngram: 3, verify: 5 }, { window: 3, ngram: 2, verify: 3 }, { window: 4, ngram: 4, verify: 2 }]) {
      const got = await generate(target, await drafterFor(target, "lookahead", { lookahead }), { prompt, maxTokens: 128 });
      assert.deepEqual(got.tokens, want.tokens, `${JSON.stringify(lookahead)} on ${JSON.stringify(prompt)}`);
    }
  }
});

test("look-ahead decoding on text that repeats a paragraph reaches tau > 1.3", async (t) => {
  const r = await generate(target, await drafterFor(target, "lookahead"), { prompt: PROMPTS[2], maxTokens: 128 });
  t.diagnostic(`lookahead 5,3,5 on a repeated paragraph: tau ${r.stats.tau.toFixed(3)}`);
  assert.ok(r.stats.tau > 1.3, `tau ${r.stats.tau}`);
  // Without the prompt's n-grams the pool starts empty: the Jacobi window alone must still find some.
  const cold = await generate(target, new LookaheadDrafter({ seedFromPrompt: false }), { prompt: PROMPTS[0], maxTokens: 128 });
  assert.ok(cold.stats.acceptedTokens > 0, "the Jacobi window never produced an accepted guess");
});

test("look-ahead decoding when sampling: reproducible under a seed", async () => {
  const run = async (seed: number) => generate(target, await drafterFor(target, "lookahead"), { prompt: PROMPTS[1], maxTokens: 48, sampling: { temperature: 0.8, seed } });
  const a = await run(2), b = await run(2);
  assert.deepEqual(a.tokens, b.tokens);
});

test("bad --lookahead values are one-line errors", () => {
  for (const [value, pattern] of [["5,3", /3 integers/], ["5,1,2", /2 <= ngram/], ["a,b,c", /3 integers/]] as const) {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--backend", "builtin", "--model", MODEL, "--method", "lookahead", "--lookahead", value, "--prompt", "hi"], { encoding: "utf8" });
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
});
