// The llama.cpp target over libllama: plain greedy decoding against the golden file, tree passes
// against evaluating each branch alone, `keep` against a fresh one-token-at-a-time evaluation of
// the committed tokens, and hidden states against the logits they must reproduce.
//
// Tolerances (measured on this machine kind, zen4 CPU variant, flash attention off, F32 KV
// cache, the target's defaults): a tree pass and a branch evaluated alone one token at a time
// differ by up to ~1e-6 in probability (the attention sums run over the cache cells in another
// order, and matrix products tile a 9-token batch differently from 1-token ones); asserted
// < 1e-4. The output projection of a
// returned hidden state reproduces the probabilities to ~1e-6 (our f32 matmul vs ggml's);
// asserted < 1e-4, and the top token equal.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { defaultModels } from "../src/defaultModels.js";
import { BuiltinTarget } from "../src/targets/builtin.js";
import type { Token } from "../src/types.js";
import { sharedFile } from "./support/sharedData.js";

const STORIES = sharedFile("models", "stories260K.gguf");
const GOLDEN = JSON.parse(readFileSync(sharedFile("models", "golden_stories260K_greedy.json"), "utf8")) as {
  prompt_text: string; prompt_tokens: number[]; greedy_tokens: number[]; logits_first_positions: number[][];
};
const TOL = 1e-4;

let stories: LlamaCppTarget;
let fresh: LlamaCppTarget; // a second context on the same file, for reference evaluations
before(async () => {
  stories = await LlamaCppTarget.load(STORIES);
  fresh = await LlamaCppTarget.load(STORIES);
});
after(async () => {
  await stories?.dispose();
  await fresh?.dispose();
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Next-token distributions after each of `seq`, one token per pass, in a reset context. */
async function oneAtATime(t: LlamaCppTarget, seq: readonly number[]): Promise<Float32Array[]> {
  await t.reset();
  const out: Float32Array[] = [];
  for (const tok of seq) out.push((await t.evaluate([tok as Token])).probs![0]);
  return out;
}

test("plain greedy decoding of stories260K gives the golden tokens", async () => {
  const prompt = stories.tokenize(GOLDEN.prompt_text);
  assert.deepEqual(prompt, GOLDEN.prompt_tokens);
  await stories.reset();
  let r = await stories.evaluate(prompt, { outputs: "last", read: "argmax" });
  const out: number[] = [];
  while (out.length < GOLDEN.greedy_tokens.length) {
    out.push(r.argmax[0]);
    r = await stories.evaluate([r.argmax[0] as Token], { read: "argmax" });
  }
  assert.deepEqual(out, GOLDEN.greedy_tokens);
  assert.equal(stories.length, prompt.length + out.length);
  // The golden logits of the first positions: compare as distributions.
  await stories.reset();
  const probs = (await stories.evaluate(GOLDEN.prompt_tokens.slice(0, GOLDEN.logits_first_positions.length) as Token[])).probs!;
  for (let p = 0; p < probs.length; p++) {
    const ref = GOLDEN.logits_first_positions[p];
    const max = Math.max(...ref);
    const e = ref.map((x) => Math.exp(x - max));
    const z = e.reduce((s, x) => s + x, 0);
    assert.ok(maxAbsDiff(probs[p], Float32Array.from(e, (x) => x / z)) < TOL, `position ${p}`);
  }
});

test("read: argmax gives the argmax of the probabilities; outputs last / none; a chain longer than a pass is split", async () => {
  const seq = [...GOLDEN.prompt_tokens, ...GOLDEN.greedy_tokens.slice(0, 20)] as Token[];
  await stories.reset();
  const all = await stories.evaluate(seq);
  assert.equal(all.probs!.length, seq.length);
  for (let i = 0; i < seq.length; i++) {
    const p = all.probs![i];
    assert.equal(all.argmax[i], p.indexOf(Math.max(...p)));
  }
  await stories.reset();
  const arg = await stories.evaluate(seq, { read: "argmax" });
  assert.equal(arg.probs, undefined);
  assert.deepEqual([...arg.argmax], [...all.argmax]);
  await stories.reset();
  const last = await stories.evaluate(seq, { outputs: "last" });
  assert.equal(last.probs!.length, 1);
  assert.ok(maxAbsDiff(last.probs![0], all.probs![seq.length - 1]) < TOL);
  await stories.reset();
  assert.equal((await stories.evaluate(seq, { outputs: "none" })).argmax.length, 0);
  assert.equal(stories.length, seq.length);

  const small = await LlamaCppTarget.load(STORIES, { maxBatch: 8 });
  try {
    const split = await small.evaluate(seq);
    assert.equal(split.probs!.length, seq.length);
    for (let i = 0; i < seq.length; i++) assert.ok(maxAbsDiff(split.probs![i], all.probs![i]) < TOL, `position ${i}`);
    await assert.rejects(small.evaluate(Array(9).fill(5) as Token[], { parents: [-1, 0, 0, 1, 1, 2, 2, 3, 3] }), /exceeds the batch of 8/);
  } finally {
    await small.dispose();
  }
});

// A tree over the prompt:      0
//                           1     2
//                         3  4     5
//                        6        7  8
// Leaves 6, 4, 7, 8 get sequences 0..3; the branch 0-2-5-8 sits at batch indices that are not
// contiguous, so its cells in the cache are not either.
const TREE_TOKENS = [300, 301, 302, 303, 304, 305, 306, 307, 308] as Token[];
const TREE_PARENTS = [-1, 0, 0, 1, 1, 2, 3, 5, 5];
const pathTo = (i: number): number[] => (i < 0 ? [] : [...pathTo(TREE_PARENTS[i]), i]);

test("a tree pass gives every branch the distributions of evaluating that branch alone", async (t) => {
  for (const [name, path] of [["stories260K", STORIES], ["default target", defaultModels().target]] as const) {
    const target = name === "stories260K" ? stories : await LlamaCppTarget.load(path);
    const alone = name === "stories260K" ? fresh : await LlamaCppTarget.load(path);
    try {
      const prompt = target.tokenize("Once upon a time, there was");
      await target.reset();
      await target.evaluate(prompt, { outputs: "none" });
      const tree = await target.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
      assert.equal(target.length, prompt.length + TREE_TOKENS.length);
      let worst = 0;
      for (let i = 0; i < TREE_TOKENS.length; i++) {
        const ref = await oneAtATime(alone, [...prompt, ...pathTo(i).map((j) => TREE_TOKENS[j])]);
        worst = Math.max(worst, maxAbsDiff(tree.probs![i], ref[ref.length - 1]));
        assert.equal(tree.argmax[i], ref[ref.length - 1].indexOf(Math.max(...ref[ref.length - 1])), `${name} node ${i}: top token`);
      }
      t.diagnostic(`${name}: max |dp| tree vs branch alone ${worst.toExponential(2)}`);
      assert.ok(worst < TOL, `${name}: max |dp| ${worst}`);
    } finally {
      if (target !== stories) await target.dispose();
      if (alone !== fresh) await alone.dispose();
    }
  }
});

test("keep of a branch (whole, partial, non-contiguous in the batch, empty) continues like a fresh evaluation of the committed tokens", async (t) => {
  const prompt = stories.tokenize("Lily liked to draw.");
  const next = [320, 321, 322, 323] as Token[];
  let worst = 0;
  // Every root path of the tree, by its last node, and the empty selection.
  for (const last of [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8]) {
    const kept = pathTo(last);
    await stories.reset();
    await stories.evaluate(prompt, { outputs: "none" });
    await stories.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
    await stories.keep(prompt.length, kept);
    assert.equal(stories.length, prompt.length + kept.length);
    const got = await stories.evaluate(next);
    const committed = [...prompt, ...kept.map((j) => TREE_TOKENS[j])];
    const ref = await oneAtATime(fresh, [...committed, ...next]);
    for (let j = 0; j < next.length; j++) worst = Math.max(worst, maxAbsDiff(got.probs![j], ref[committed.length + j]));
  }
  t.diagnostic(`max |dp| after keep vs fresh one-token-at-a-time: ${worst.toExponential(2)}`);
  assert.ok(worst < TOL, `max |dp| ${worst}`);

  // Two trees in a row, the second after keeping a branch of the first.
  await stories.reset();
  await stories.evaluate(prompt, { outputs: "none" });
  await stories.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
  await stories.keep(prompt.length, [0, 2, 5, 8]);
  const second = await stories.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
  const base = [...prompt, 300, 302, 305, 308];
  for (const i of [4, 8]) {
    const ref = await oneAtATime(fresh, [...base, ...pathTo(i).map((j) => TREE_TOKENS[j])]);
    assert.ok(maxAbsDiff(second.probs![i], ref[ref.length - 1]) < TOL, `second tree, node ${i}`);
  }
  // keep must be given one root path.
  await assert.rejects(stories.keep(base.length, [0, 3]), /not one branch/);
});

test("two threads (a persistent ggml threadpool) give the golden tokens and the same tree distributions", async () => {
  const two = await LlamaCppTarget.load(STORIES, { threads: 2, batchThreads: 2 });
  try {
    assert.ok(two.library.threadpool, "the CPU backend exports no threadpool functions");
    let r = await two.evaluate(GOLDEN.prompt_tokens as Token[], { outputs: "last", read: "argmax" });
    const out: number[] = [];
    while (out.length < GOLDEN.greedy_tokens.length) {
      out.push(r.argmax[0]);
      r = await two.evaluate([r.argmax[0] as Token], { read: "argmax" });
    }
    assert.deepEqual(out, GOLDEN.greedy_tokens);
    const prompt = two.tokenize("Once upon a time, there was");
    await two.reset();
    await stories.reset();
    await two.evaluate(prompt, { outputs: "none" });
    await stories.evaluate(prompt, { outputs: "none" });
    const a = await two.evaluate(TREE_TOKENS, { parents: TREE_PARENTS }), b = await stories.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
    for (let i = 0; i < TREE_TOKENS.length; i++) assert.ok(maxAbsDiff(a.probs![i], b.probs![i]) < TOL, `node ${i}`);
    await stories.keep(prompt.length, []);
  } finally {
    await two.dispose();
  }
});

test("truncate after a tree pass, and after a chain, drops exactly the tokens past the new length", async () => {
  const prompt = stories.tokenize("Tom and his dog");
  await stories.reset();
  await stories.evaluate(prompt, { outputs: "none" });
  await stories.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
  await stories.truncate(prompt.length - 1);
  assert.equal(stories.length, prompt.length - 1);
  const got = await stories.evaluate([prompt[prompt.length - 1], 330 as Token]);
  const ref = await oneAtATime(fresh, [...prompt, 330]);
  assert.ok(maxAbsDiff(got.probs![1], ref[ref.length - 1]) < TOL);
  await stories.truncate(2);
  const again = await stories.evaluate([prompt[2]]);
  assert.ok(maxAbsDiff(again.probs![0], ref[2]) < TOL);
});

test("hidden states: the output projection of the returned state reproduces the distributions (tied and untied output)", async (t) => {
  for (const path of [STORIES, defaultModels().target]) {
    const target = path === STORIES ? stories : await LlamaCppTarget.load(path);
    try {
      const { output } = target.tokenMatrices();
      assert.equal(output.rows, target.vocabSize);
      assert.equal(output.cols, target.hiddenSize);
      await target.reset();
      const seq = target.tokenize("Once upon a time there was a girl");
      const r = await target.evaluate(seq.slice(0, 4), { outputs: "none" }).then(() => target.evaluate(TREE_TOKENS, { parents: TREE_PARENTS, hidden: true }));
      const E = target.hiddenSize, V = target.vocabSize, n = TREE_TOKENS.length;
      assert.equal(r.hidden!.length, n * E);
      const logits = new Float32Array(n * V);
      output.matMul(r.hidden!, n, logits);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * V, (i + 1) * V);
        const max = Math.max(...row);
        const e = Float32Array.from(row, (x) => Math.exp(x - max));
        const z = e.reduce((s, x) => s + x, 0);
        worst = Math.max(worst, maxAbsDiff(r.probs![i], e.map((x) => x / z)));
        assert.equal(row.indexOf(max), r.argmax[i], `node ${i}: top token`);
      }
      t.diagnostic(`${path.split("/").pop()}: max |dp| of softmax(W h) vs the pass ${worst.toExponential(2)}`);
      assert.ok(worst < TOL, `max |dp| ${worst}`);
      // A pass without hidden states afterwards still gives the same distributions.
      await target.truncate(4);
      const plain = await target.evaluate(TREE_TOKENS, { parents: TREE_PARENTS });
      assert.equal(plain.hidden, undefined);
      for (let i = 0; i < n; i++) assert.ok(maxAbsDiff(plain.probs![i], r.probs![i]) < TOL);
      await target.keep(4, []);
    } finally {
      if (target !== stories) await target.dispose();
    }
  }
});

test("tokens outside the vocabulary and a full context are refused before native code", async () => {
  await stories.reset();
  await assert.rejects(stories.evaluate([stories.vocabSize as Token]), /outside the vocabulary/);
  await assert.rejects(stories.evaluate([-1 as Token]), /outside the vocabulary/);
  assert.throws(() => stories.detokenize([1e9 as Token]), /outside the vocabulary/);
  const tiny = await LlamaCppTarget.load(STORIES, { contextSize: 16 });
  try {
    assert.equal(tiny.contextSize, 16);
    await tiny.evaluate(Array(16).fill(5) as Token[], { outputs: "none" });
    await assert.rejects(tiny.evaluate([5 as Token]), /context full/);
  } finally {
    await tiny.dispose();
  }
});

test("tokenize and detokenize agree with specdec's own tokenizer (built-in backend) on the same files", async () => {
  const texts = ["Once upon a time, there was a girl.", " two  spaces\n\nnew line", "héllo 😀 wörld", ""];
  for (const path of [STORIES, defaultModels().target, sharedFile("models", "llama-2-tiny-random.gguf")]) {
    const ours = path === STORIES ? stories : await LlamaCppTarget.load(path);
    const builtin = await BuiltinTarget.load(path);
    try {
      for (const text of texts) {
        const ids = ours.tokenize(text);
        assert.deepEqual(ids, builtin.tokenize(text), `${path}: ${JSON.stringify(text)}`);
        assert.deepEqual(ours.tokenize(text, false), builtin.tokenize(text, false));
        assert.equal(ours.detokenize(ids), builtin.detokenize(ids));
        if (ids.length > 3) assert.equal(ours.detokenize(ids.slice(3), ids.slice(0, 3)), builtin.detokenize(ids.slice(3), ids.slice(0, 3)));
      }
    } finally {
      if (ours !== stories) await ours.dispose();
      await builtin.dispose();
    }
  }
});

test("a chain padded with filler (padTo) gives the distributions of the unpadded chain and leaves no filler in the cache", async () => {
  const prompt = stories.tokenize("Tom and his dog");
  const chain = [prompt[prompt.length - 1], 330 as Token, 280 as Token];
  const ref = await oneAtATime(fresh, [...prompt.slice(0, -1), ...chain]);
  await stories.reset();
  await stories.evaluate(prompt.slice(0, -1), { outputs: "none" });
  const padded = await stories.evaluate(chain, { padTo: 8 });
  assert.equal(padded.probs!.length, chain.length, "filler gives no outputs");
  assert.equal(stories.length, prompt.length - 1 + chain.length, "filler is not counted in the cache");
  for (let i = 0; i < chain.length; i++) assert.ok(maxAbsDiff(padded.probs![i], ref[prompt.length - 1 + i]) < TOL, `position ${i}`);
  // Keep a prefix, then continue: the filler's cells are gone (else the next pass would see them).
  await stories.keep(prompt.length - 1, [0, 1]);
  const next = await stories.evaluate([280 as Token, 42 as Token], { padTo: 4 });
  const ref2 = await oneAtATime(fresh, [...prompt, 330, 280, 42]);
  assert.ok(maxAbsDiff(next.probs![0], ref2[ref2.length - 2]) < TOL);
  assert.ok(maxAbsDiff(next.probs![1], ref2[ref2.length - 1]) < TOL);
  // A pass already as long, or longer than the batch allows, is passed as it is.
  await stories.truncate(prompt.length + 1);
  const same = await stories.evaluate([280 as Token], { padTo: 1 });
  assert.equal(same.probs!.length, 1);
  await stories.truncate(prompt.length + 1);
  const capped = await stories.evaluate([280 as Token], { padTo: stories.maxBatch + 100 });
  assert.equal(capped.probs!.length, 1);
  assert.equal(stories.length, prompt.length + 2);
});
