import { test } from "node:test";
import assert from "node:assert/strict";
import { generate, speculativeStream } from "../src/decode/speculativeDecode.js";
import { TextStream } from "../src/decode/textStream.js";
import { NoDrafter } from "../src/drafters/none.js";
import { PromptLookupDrafter } from "../src/drafters/promptLookup.js";
import { SeededRng } from "../src/sampling/rng.js";
import type { PassRequest, Target } from "../src/targets/target.js";
import type { Drafter } from "../src/drafters/drafter.js";
import type { Planner } from "../src/planner/planner.js";
import { asTokens, type Token } from "../src/types.js";
import { MarkovDrafter, MarkovTarget, randomTransitions } from "./support/markovModel.js";

/** A byte-level target for text tests: token = byte, detokenize decodes UTF-8 (U+FFFD for partial characters). */
function byteTarget(): Target {
  const m = new MarkovTarget(randomTransitions(256, new SeededRng(1)));
  const dec = new TextDecoder("utf-8");
  return Object.assign(Object.create(m) as Target, {
    tokenize: (s: string) => [...new TextEncoder().encode(s)] as Token[],
    detokenize: (tokens: readonly Token[]) => dec.decode(Uint8Array.from(tokens)),
  });
}

test("text stream never splits a UTF-8 character and adds up to the whole text", () => {
  const text = "héllo wörld — 日本語 🙂👍🏽 done";
  const bytes = asTokens([...new TextEncoder().encode(text)]);
  const stream = new TextStream(byteTarget(), []);
  const deltas: string[] = [];
  for (let i = 0; i < bytes.length; i++) deltas.push(stream.push([bytes[i]], i === bytes.length - 1));
  for (const d of deltas) assert.ok(!d.includes("\uFFFD"), `delta ${JSON.stringify(d)} splits a character`);
  assert.equal(deltas.join(""), text);
});

test("text stream holds back a possible stop string and cuts before it", () => {
  const t = byteTarget();
  const enc = (s: string) => asTokens([...new TextEncoder().encode(s)]);
  const stream = new TextStream(t, [], ["STOP"]);
  let out = stream.push(enc("abc ST"));
  assert.equal(out, "abc "); // "ST" may begin "STOP"
  out += stream.push(enc("ARS"));
  assert.equal(out, "abc STAR"); // the final "S" may begin "STOP" too
  out += stream.push(enc(" xSTOP and more"));
  assert.equal(out, "abc STARS x");
  assert.ok(stream.stopped);
});

test("generation stops at an end-of-generation token, which is not part of the output", async () => {
  const P = randomTransitions(5, new SeededRng(3));
  // Token 4 ends generation and is likely after token 1.
  P[1] = Float32Array.from([0.05, 0.05, 0.05, 0.05, 0.8]);
  const target = new MarkovTarget(P);
  (target.eogTokens as Set<Token>).add(4 as Token);
  const r = await generate(target, new MarkovDrafter(P), { prompt: [1 as Token], maxTokens: 50, sampling: { temperature: 0 } });
  assert.equal(r.stopReason, "eog");
  assert.equal(r.tokens.length, 0);
});

test("generation stops when the AbortSignal fires and keeps what was committed", async () => {
  const P = randomTransitions(6, new SeededRng(4));
  const abort = new AbortController();
  const stream = speculativeStream(new MarkovTarget(P), new NoDrafter(), { prompt: [0 as Token], maxTokens: 100, signal: abort.signal, sampling: { temperature: 1 } });
  let steps = 0;
  let r = await stream.next();
  while (!r.done) {
    if (++steps === 3) abort.abort();
    r = await stream.next();
  }
  assert.equal(r.value.stopReason, "abort");
  assert.equal(r.value.tokens.length, 3);
});

test("the target cache always holds the committed tokens but the last (rollback by truncation)", async () => {
  const P = randomTransitions(6, new SeededRng(8), 3);
  const target = new MarkovTarget(P);
  const r = await generate(target, new MarkovDrafter(randomTransitions(6, new SeededRng(9), 3)), { prompt: asTokens([0, 1, 2]), maxTokens: 40, draftMax: 4, sampling: { temperature: 1, seed: 3 } });
  assert.equal(r.tokens.length, 40);
  assert.equal(target.length, 3 + 40 - 1);
  assert.ok(r.stats.draftedTokens > r.stats.acceptedTokens && r.stats.acceptedTokens > 0);
  assert.equal(r.stats.targetCalls, target.passes - 1); // minus the prefill pass
  assert.ok(Math.abs(r.stats.tau - 40 / r.stats.targetCalls) < 1e-12);
});

test("greedy speculative output equals plain greedy output on a Markov target", async () => {
  const P = randomTransitions(8, new SeededRng(10), 2);
  const plain = await generate(new MarkovTarget(P), new NoDrafter(), { prompt: [3 as Token], maxTokens: 60 });
  const spec = await generate(new MarkovTarget(P), new MarkovDrafter(randomTransitions(8, new SeededRng(11), 2)), { prompt: [3 as Token], maxTokens: 60, draftMax: 5 });
  assert.deepEqual(spec.tokens, plain.tokens);
  const self = await generate(new MarkovTarget(P), new MarkovDrafter(P), { prompt: [3 as Token], maxTokens: 60, draftMax: 5 });
  assert.deepEqual(self.tokens, plain.tokens);
  assert.equal(self.stats.tau, 6);
});

test("prompt lookup: longest n-gram first, most recent occurrence, no self-match", async () => {
  const d = new PromptLookupDrafter({ ngramMax: 3, ngramMin: 1 });
  d.begin();
  const chain = (n: number) => ({ maxDepth: n, maxNodes: n });
  // "7 8 9" occurs twice: after the first comes 1 2, after the second 3 4; "9" alone is followed by 5 once more recently.
  const ctx = asTokens([7, 8, 9, 1, 2, 0, 7, 8, 9, 3, 4, 0, 6, 9, 5, 0, 7, 8, 9]);
  assert.deepEqual(d.propose(ctx, chain(2)).tokens, [3, 4]);
  assert.deepEqual(d.propose(asTokens([...ctx, 3, 4, 0, 6]), chain(3)).tokens, [9, 5, 0]);
  assert.deepEqual(d.propose(asTokens([...ctx, 3, 4, 0, 6, 42]), chain(3)).tokens, []); // 42 never seen before
  const fresh = new PromptLookupDrafter();
  fresh.begin();
  // A repeat that runs into the end of the context continues with its period.
  assert.deepEqual(fresh.propose(asTokens([5, 5, 5, 5]), chain(4)).tokens, [5, 5, 5, 5]);
  assert.deepEqual(fresh.propose(asTokens([1, 7, 8, 9, 7, 8, 9, 7, 8]), chain(5)).tokens, [9, 7, 8, 9, 7]);
});

test("text stream with origins: segments tell accepted guesses from the target's own tokens", () => {
  const enc = (s: string) => asTokens([...new TextEncoder().encode(s)]);
  const stream = new TextStream(byteTarget(), [], [], true);
  assert.equal(stream.push(enc("abc"), false, 2), "abc");
  assert.deepEqual(stream.lastSegments(), [{ text: "ab", guessed: true }, { text: "c", guessed: false }]);
  // A character split over tokens waits for its last byte; it counts as guessed only if its last byte was.
  const e = enc("é"); // two bytes
  assert.equal(stream.push([e[0]], false, 1), "");
  assert.equal(stream.push([e[1], ...enc("d")], false, 1), "éd");
  assert.deepEqual(stream.lastSegments(), [{ text: "é", guessed: true }, { text: "d", guessed: false }]);
  const plain = new TextStream(byteTarget(), []);
  plain.push(enc("xy"), false, 2);
  assert.deepEqual(plain.lastSegments(), [{ text: "xy", guessed: false }]);
});

test("a planner that leaves a hidden-state drafter out of a generation: plain passes without hidden states, the drafter never called", async () => {
  const markov = new MarkovTarget(randomTransitions(16, new SeededRng(3)));
  const requests: PassRequest[] = [];
  const target = Object.assign(Object.create(markov) as Target, {
    capabilities: { treeAttention: true, hiddenStates: true },
    evaluate: (tokens: readonly Token[], request: PassRequest = {}) => (requests.push(request), markov.evaluate(tokens, request)),
  });
  const calls: string[] = [];
  const drafter: Drafter = {
    name: "reads hidden states",
    requires: ["hiddenStates"],
    begin: () => void calls.push("begin"),
    propose: () => (calls.push("propose"), { tokens: [], parents: [] }),
    observe: () => void calls.push("observe"),
  };
  let attach = false;
  const planned: number[] = [];
  const planner: Planner = { name: "attach as told", attach: () => attach, plan: () => (planned.push(1), { maxDepth: 2, maxNodes: 2 }), observe() {} };
  const want = await generate(markov, new NoDrafter(), { prompt: asTokens([1, 2, 3]), maxTokens: 12 });
  const left = await generate(target, drafter, { prompt: asTokens([1, 2, 3]), maxTokens: 12, planner });
  assert.deepEqual(left.tokens, want.tokens);
  assert.equal(calls.length, 0, calls.join(" "));
  assert.ok(requests.length > 1 && requests.every((r) => !r.hidden), "a pass asked for hidden states");
  assert.equal(left.stats.draftedTokens, 0);
  // Attached, the same drafter is begun, asked and shown every pass, and passes read hidden states.
  attach = true;
  requests.length = 0;
  const joined = await generate(target, drafter, { prompt: asTokens([1, 2, 3]), maxTokens: 12, planner });
  assert.deepEqual(joined.tokens, want.tokens);
  assert.equal(calls[0], "begin");
  assert.ok(calls.includes("propose") && calls.includes("observe"));
  assert.ok(requests.length > 1 && requests.every((r) => r.hidden), "a pass left out hidden states");
});
