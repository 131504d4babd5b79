import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { generate, type GenerationResult } from "../src/decode/speculativeDecode.js";
import { drafterFor } from "./support/methods.js";
import { sharedFile } from "./support/sharedData.js";
import { NEAR_TIE, top2GapAt } from "./support/nearTie.js";
import { defaultModels } from "../src/defaultModels.js";
import type { MethodOptionValues } from "../src/drafters/method.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const PROMPTS = [
  "Once upon a time",
  "Tom and his dog went to the park. They played with a ball.",
  "Lily liked to draw. One day she drew a big red sun. Her mom said",
  'Once upon a time, there was a little boy named Ben. Ben had a toy car. He loved his car.\n\nOnce upon a time, there was a little boy named Ben.',
];
const MAX_TOKENS = 160;
let target: LlamaCppTarget;
const reference = new Map<string, GenerationResult>();

before(async () => {
  target = await LlamaCppTarget.load(MODEL);
  const none = await drafterFor(target, "none");
  for (const prompt of PROMPTS) reference.set(prompt, await generate(target, none, { prompt, maxTokens: MAX_TOKENS }));
});
after(async () => target?.dispose());

test("plain decoding reference runs to the token budget", () => {
  for (const [prompt, r] of reference) {
    assert.ok(r.tokens.length === MAX_TOKENS || r.stopReason === "eog", `${JSON.stringify(prompt)}: ${r.tokens.length} tokens, stop ${r.stopReason}`);
    assert.equal(r.stats.tau, 1);
  }
});

// Every method at temperature 0 on the llama.cpp backend, on stories260K (its draft model is
// itself) and on the default family (its distilled draft, its Medusa heads): the tokens of plain
// decoding, a difference allowed only where the target's two best tokens were a near-tie.
const FAMILY = defaultModels();
const METHODS: { model: "stories260K" | "family"; method: string; options: MethodOptionValues }[] = [
  { model: "stories260K", method: "blind", options: {} },
  { model: "stories260K", method: "prompt-lookup", options: {} },
  { model: "stories260K", method: "prompt-lookup", options: { candidates: 4 } },
  { model: "stories260K", method: "draft", options: { draftModel: MODEL } },
  { model: "stories260K", method: "lookahead", options: {} },
  { model: "family", method: "prompt-lookup", options: {} },
  { model: "family", method: "prompt-lookup", options: { candidates: 4 } },
  { model: "family", method: "draft", options: { draftModel: FAMILY.draft } },
  { model: "family", method: "lookahead", options: {} },
  { model: "family", method: "medusa", options: { medusa: FAMILY.medusa } },
];

let familyTarget: LlamaCppTarget;
const familyReference = new Map<string, GenerationResult>();
before(async () => {
  familyTarget = await LlamaCppTarget.load(FAMILY.target);
  const none = await drafterFor(familyTarget, "none");
  for (const prompt of PROMPTS) familyReference.set(prompt, await generate(familyTarget, none, { prompt, maxTokens: MAX_TOKENS }));
});
after(async () => familyTarget?.dispose());

for (const { model, method, options } of METHODS) {
  const label = `${method}${Object.keys(options).length ? ` ${JSON.stringify(options).replace(/"[^"]*\/([^/"]+)"/g, "$1")}` : ""} on ${model}`;
  test(`greedy ${label} (llama.cpp) gives the tokens of plain decoding (differences only at near-ties)`, async (t) => {
    const tgt = model === "family" ? familyTarget : target;
    const refs = model === "family" ? familyReference : reference;
    const drafter = await drafterFor(tgt, method, options);
    let differing = 0, tauSum = 0;
    try {
      for (const prompt of PROMPTS) {
        const want = refs.get(prompt)!;
        const got = await generate(tgt, drafter, { prompt, maxTokens: MAX_TOKENS, draftMax: method === "medusa" ? undefined : 6 });
        tauSum += got.stats.tau;
        if (got.tokens.join() === want.tokens.join()) continue;
        differing++;
        let at = 0;
        while (got.tokens[at] === want.tokens[at]) at++;
        const gap = await top2GapAt(tgt, prompt, want.tokens, at);
        t.diagnostic(`${label}: first difference at token ${at}, top-2 gap ${gap}`);
        assert.ok(gap < NEAR_TIE, `${label} on ${JSON.stringify(prompt)} differs at token ${at} where the target's top-2 gap is ${gap} (not a near-tie)`);
      }
    } finally {
      await drafter.dispose?.();
    }
    t.diagnostic(`${label}: ${differing} of ${PROMPTS.length} outputs differ from plain decoding; mean tau ${(tauSum / PROMPTS.length).toFixed(2)}`);
    assert.ok(differing <= 1, `${label}: ${differing} of ${PROMPTS.length} outputs differ — near-ties must be rare`);
  });
}

test("draft = target at temperature 0: nearly every guess accepted, tau close to k + 1", async () => {
  const drafter = await drafterFor(target, "draft", { draftModel: MODEL });
  try {
    const k = 4;
    const r = await generate(target, drafter, { prompt: PROMPTS[1], maxTokens: 150, draftMax: k });
    assert.equal(r.tokens.join(), (await generate(target, await drafterFor(target, "none"), { prompt: PROMPTS[1], maxTokens: 150 })).tokens.join());
    assert.ok(r.stats.acceptanceRate > 0.95, `acceptance ${r.stats.acceptanceRate}`);
    assert.ok(r.stats.tau > 0.9 * (k + 1), `tau ${r.stats.tau} for k = ${k}`);
  } finally {
    await drafter.dispose?.();
  }
});

test("blind guessing: (nearly) nothing accepted, output still equal", async () => {
  const drafter = await drafterFor(target, "blind");
  const r = await generate(target, drafter, { prompt: PROMPTS[0], maxTokens: MAX_TOKENS, draftMax: 4 });
  assert.equal(r.tokens.join(), reference.get(PROMPTS[0])!.tokens.join());
  assert.ok(r.stats.draftedTokens > 100, `blind drafted ${r.stats.draftedTokens}`);
  assert.ok(r.stats.acceptanceRate < 0.1, `blind acceptance ${r.stats.acceptanceRate}`);
  assert.ok(r.stats.tau < 1.15, `blind tau ${r.stats.tau}`);
});

test("prompt lookup on a prompt that repeats a passage reaches tau > 1", async () => {
  const drafter = await drafterFor(target, "prompt-lookup");
  const r = await generate(target, drafter, { prompt: PROMPTS[3], maxTokens: MAX_TOKENS });
  assert.ok(r.stats.tau > 1.1, `tau ${r.stats.tau}`);
  assert.ok(r.stats.acceptanceByPosition[0].rate > 0.2, `first-position acceptance ${r.stats.acceptanceByPosition[0].rate}`);
});

test("sampling at temperature 0.8 with a draft model is reproducible under a seed", async () => {
  const drafter = await drafterFor(target, "draft", { draftModel: MODEL });
  try {
    const run = (seed: number) => generate(target, drafter, { prompt: PROMPTS[0], maxTokens: 64, sampling: { temperature: 0.8, seed } });
    const a = await run(11);
    const b = await run(11);
    const c = await run(12);
    assert.equal(a.tokens.join(), b.tokens.join());
    assert.notEqual(a.tokens.join(), c.tokens.join());
    // Draft = target: q = p, so every guess is accepted (up to float rounding).
    assert.ok(a.stats.acceptanceRate > 0.9, `acceptance ${a.stats.acceptanceRate}`);
  } finally {
    await drafter.dispose?.();
  }
});

test("streamed text equals the detokenized tokens and stop strings cut the text", async () => {
  const r = reference.get(PROMPTS[0])!;
  assert.equal(r.text, target.detokenize(r.tokens, target.tokenize(PROMPTS[0])));
  const stop = r.text.slice(40, 46);
  const s = await generate(target, await drafterFor(target, "prompt-lookup"), { prompt: PROMPTS[0], maxTokens: MAX_TOKENS, stop: [stop] });
  assert.equal(s.stopReason, "stop");
  assert.equal(s.text, r.text.slice(0, r.text.indexOf(stop)));
});

test("the llama.cpp backend reports the full next-token distribution (no hidden top-k / top-p)", async () => {
  await target.reset();
  const d = (await target.evaluate(target.tokenize("Once upon a time"), { outputs: "last" })).probs![0];
  let nonzero = 0, sum = 0;
  for (const v of d) {
    if (v > 0) nonzero++;
    sum += v;
  }
  assert.ok(nonzero > 400, `only ${nonzero} of ${d.length} tokens have probability`);
  assert.ok(Math.abs(sum - 1) < 1e-3, `sum ${sum}`);
});
