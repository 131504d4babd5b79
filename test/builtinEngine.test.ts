import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { methods } from "../src/methods.js";
import { drafterFor } from "./support/methods.js";
import { sharedFile } from "./support/sharedData.js";
import type { Token } from "../src/types.js";
import type { Planner } from "../src/planner/planner.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const golden = JSON.parse(readFileSync(sharedFile("models", "golden_stories260K_greedy.json"), "utf8")) as {
  prompt_text: string;
  prompt_tokens: number[];
  greedy_tokens: number[];
  greedy_text: string;
  logits_first_positions: number[][];
};

let target: BuiltinTarget;
before(async () => {
  target = await BuiltinTarget.load(MODEL);
});
after(async () => target?.dispose());

test("builtin engine: tokenizer gives the golden prompt tokens", () => {
  assert.deepEqual(target.tokenize(golden.prompt_text), golden.prompt_tokens);
});

test("builtin engine: logits of the first 6 positions match the golden reference within 1e-4", () => {
  const seq = [...golden.prompt_tokens, ...golden.greedy_tokens];
  const e = target.engine;
  e.truncate(0);
  let maxDiff = 0;
  for (let i = 0; i < 6; i++) {
    const { logits } = e.forward([seq[i]]);
    for (let j = 0; j < logits.length; j++) maxDiff = Math.max(maxDiff, Math.abs(logits[j] - golden.logits_first_positions[i][j]));
  }
  assert.ok(maxDiff < 1e-4, `max |logit - golden| = ${maxDiff}`);
});

test("builtin engine: greedy tokens from 'Once upon a time' equal all 120 golden tokens", async () => {
  const r = await generate(target, await drafterFor(target, "none"), { prompt: golden.prompt_text, maxTokens: 120 });
  assert.deepEqual(r.tokens, golden.greedy_tokens);
  assert.equal(golden.prompt_text + r.text, golden.greedy_text);
});

test("builtin engine: a k-token pass gives bit-identical logits to k one-token passes", () => {
  const seq = [...golden.prompt_tokens, ...golden.greedy_tokens].slice(0, 40);
  const e = target.engine;
  for (const k of [2, 7, 16]) {
    e.truncate(0);
    e.forward(seq.slice(0, 10), { logits: "none" });
    const batched = Float32Array.from(e.forward(seq.slice(10, 10 + k)).logits);
    e.truncate(10);
    for (let i = 0; i < k; i++) {
      const single = e.forward([seq[10 + i]]).logits;
      const row = batched.subarray(i * single.length, (i + 1) * single.length);
      assert.ok(row.every((v, j) => Object.is(v, single[j])), `k=${k}: position ${i} differs`);
    }
  }
});

test("builtin engine: a tree-masked pass gives each branch the logits of evaluating it alone", () => {
  const e = target.engine;
  const prefix = golden.prompt_tokens;
  // Two branches after the prefix: [a, b] and [c, d, f]; batch order a c b d f.
  const a = 432, b = 383, c = 267, d = 286, f = 261;
  const tokens = [a, c, b, d, f];
  const parents = [-1, -1, 0, 1, 3];
  e.truncate(0);
  e.forward(prefix, { logits: "none" });
  const tree = Float32Array.from(e.forward(tokens, { parents }).logits);
  const V = target.vocabSize;
  const alone = (branch: number[]) => {
    e.truncate(prefix.length);
    return Float32Array.from(e.forward(branch).logits);
  };
  const ab = alone([a, b]);
  const cdf = alone([c, d, f]);
  const same = (x: Float32Array, y: Float32Array) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
  assert.ok(same(tree.subarray(0, V), ab.subarray(0, V)), "a");
  assert.ok(same(tree.subarray(2 * V, 3 * V), ab.subarray(V, 2 * V)), "b");
  assert.ok(same(tree.subarray(1 * V, 2 * V), cdf.subarray(0, V)), "c");
  assert.ok(same(tree.subarray(3 * V, 4 * V), cdf.subarray(V, 2 * V)), "d");
  assert.ok(same(tree.subarray(4 * V, 5 * V), cdf.subarray(2 * V, 3 * V)), "f");

  // Commit the [c, d] branch: keep batch slots 1 and 3, then continue with f as a plain chain.
  e.truncate(0);
  e.forward(prefix, { logits: "none" });
  e.forward(tokens, { parents, logits: "none" });
  e.keep(prefix.length, [1, 3]);
  assert.equal(e.length, prefix.length + 2);
  const next = e.forward([f]).logits;
  assert.ok(same(Float32Array.from(next), cdf.subarray(2 * V, 3 * V)), "continuing after keep()");
});

test("builtin engine: every method's greedy tokens equal plain decoding exactly, also where some steps are declined", async () => {
  const prompts = ["Once upon a time", "Tom and his dog went to the park.", "Lily liked to draw. One day she drew a big red sun.\n\nLily liked to draw."];
  // A planner that declines every third step: the drafter then sees passes it proposed nothing
  // for (look-ahead once read such a pass's predictions as its window's and drafted undefined tokens).
  let step = 0;
  const declining: Planner = { name: "every third declined", plan: (l) => (step++ % 3 === 2 ? { maxDepth: 0, maxNodes: 0 } : { maxDepth: Math.min(4, l.maxDepth), maxNodes: Math.min(24, l.maxNodes) }), observe() {} };
  const none = await drafterFor(target, "none");
  for (const prompt of prompts) {
    const want = await generate(target, none, { prompt, maxTokens: 128 });
    for (const method of methods().map((m) => m.name).filter((m) => m !== "medusa" && m !== "eagle")) { // heads of their own: test/medusa.test.ts, test/eagle.test.ts
      const drafter = await drafterFor(target, method, method === "draft" ? { draftModel: MODEL } : {});
      const got = await generate(target, drafter, { prompt, maxTokens: 128, draftMax: 4 });
      assert.deepEqual(got.tokens, want.tokens, `${method} on ${JSON.stringify(prompt)}`);
      step = 0;
      const gaps = await generate(target, drafter, { prompt, maxTokens: 128, planner: declining });
      assert.deepEqual(gaps.tokens, want.tokens, `${method}, every third step declined, on ${JSON.stringify(prompt)}`);
      await drafter.dispose?.();
    }
  }
});

test("builtin engine: bad token ids and bad tree parents are clear errors", () => {
  const e = target.engine;
  e.truncate(0);
  assert.throws(() => e.forward([100000 as Token]), /outside the vocabulary/);
  assert.throws(() => e.forward([1, 2], { parents: [-1, 5] }), /tree parent/);
});
