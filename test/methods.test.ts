// The method registry: a method is one descriptor (name, default draft length, options,
// create); registering one makes it run through the loop like the built-in ones.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { generate } from "../src/decode/speculativeDecode.js";
import { chainTree } from "../src/drafters/draftTree.js";
import type { Drafter } from "../src/drafters/drafter.js";
import type { MethodDescriptor } from "../src/drafters/method.js";
import { NoDrafter } from "../src/drafters/none.js";
import { OptionError } from "../src/errors.js";
import { createDrafter, MethodOptionError, methodNamed, registerMethod, resolveMethodOptions } from "../src/methods.js";
import { openDrafter, openTarget, type OpenedTarget } from "../src/session.js";
import type { Token } from "../src/types.js";
import { MarkovTarget, randomTransitions } from "./support/markovModel.js";
import { SeededRng } from "../src/sampling/rng.js";
import { sharedFile } from "./support/sharedData.js";

// A toy method in a few lines: guess that the last token repeats `times` times.
const repeatLast: MethodDescriptor = {
  name: "repeat-last",
  summary: "guess that the last token repeats",
  defaultDraftMax: 3,
  options: { times: { kind: "integer", description: "how many repeats to guess", default: 2, min: 1, max: 8 } },
  create: (_ctx, o): Drafter => ({
    name: "repeat-last",
    begin() {},
    propose: (context, budget) => chainTree(new Array<Token>(Math.min(o.times as number, budget.maxDepth)).fill(context[context.length - 1])),
    observe() {},
  }),
};
registerMethod(repeatLast);

let opened: OpenedTarget;
before(async () => {
  opened = await openTarget({ model: sharedFile("models", "stories260K.gguf"), backend: "builtin" });
});
after(async () => opened?.target.dispose());

test("a registered toy method runs through generate and gives plain decoding's tokens", async () => {
  const prompt = "Once upon a time, there was a little girl. She said: no no no no";
  const plain = await generate(opened.target, new NoDrafter(), { prompt, maxTokens: 64 });
  const drafter = await openDrafter(opened, "repeat-last", { times: 3 });
  const r = await generate(opened.target, drafter, { prompt, maxTokens: 64, draftMax: methodNamed("repeat-last").defaultDraftMax });
  assert.deepEqual(r.tokens, plain.tokens);
  assert.equal(r.stats.draftedTokens > 0, true);
  assert.ok(r.stats.acceptanceByPosition.length <= 3, "never deeper than its three guesses");
});

test("method options are checked against the descriptor: unknown names, ranges, defaults", async () => {
  assert.deepEqual(resolveMethodOptions(repeatLast, {}), { times: 2 });
  assert.throws(() => resolveMethodOptions(repeatLast, { times: 9 }), (e: unknown) => e instanceof MethodOptionError && e.option === "times" && /between 1 and 8/.test(e.message));
  assert.throws(() => resolveMethodOptions(repeatLast, { times: 1.5 }), /must be an integer/);
  assert.throws(() => resolveMethodOptions(repeatLast, { often: 1 }), /has no option often/);
  assert.throws(() => methodNamed("no-such-method"), /unknown method 'no-such-method' \(choose one of: none, blind, prompt-lookup/);
  // A file option without a value names the option; the CLI shows its flag.
  await assert.rejects(createDrafter("draft", { target: opened.target, loadModel: () => Promise.reject(new Error("unused")) }), (e: unknown) => e instanceof OptionError && /needs a helper model/.test(e.message) && e.render((n) => `--${n}`).includes("--draftModel FILE"));
});

test("a method's required capability is checked once, with one error naming it and the backends that have it", async () => {
  const markov = new MarkovTarget(randomTransitions(6, new SeededRng(1)));
  const needsHidden: Drafter = { name: "needs-hidden", requires: ["hiddenStates"], begin() {}, propose: () => chainTree([]), observe() {} };
  await assert.rejects(generate(markov, needsHidden, { prompt: [0 as Token], maxTokens: 4 }), /method 'needs-hidden' needs the target's hidden states, which the markov backend does not have \(use option "backend" llama\.cpp or builtin\)/);
  const tree = await openDrafter(opened, "prompt-lookup", { candidates: 3 });
  await assert.rejects(generate(markov, tree, { prompt: [0 as Token], maxTokens: 4 }), /needs tree attention/);
});
