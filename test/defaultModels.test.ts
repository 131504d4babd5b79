// The default model family committed under models/: every method runs on it and, at
// temperature 0, gives exactly the tokens of plain decoding; the files load in both engines;
// each has a model card with its recipe.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { defaultModels, packageRoot } from "../src/defaultModels.js";
import { generate, type GenerationResult } from "../src/decode/speculativeDecode.js";
import type { MethodOptionValues } from "../src/drafters/method.js";
import { drafterFor } from "./support/methods.js";
import { inspectModelFile } from "../src/gguf/modelInfo.js";
import { openGguf } from "../src/gguf/reader.js";

// The committed family, never an override: this test is about the files that ship.
delete process.env.SPECDEC_MODELS;
const family = defaultModels();
const PROMPTS = [
  "Once upon a time, there was a little girl named Lily. She loved to play outside.",
  "Tom had a red ball. He liked to throw it to his dog, Max. One day, the ball went over the fence.\n\nTom had a red ball.",
];
const MAX_TOKENS = 96;

let target: BuiltinTarget;
const plain = new Map<string, GenerationResult>();

before(async () => {
  for (const f of [family.target, family.draft, family.medusa, family.eagle]) assert.ok(existsSync(f), `${f} is missing: the default family ships in models/`);
  target = await BuiltinTarget.load(family.target);
  for (const prompt of PROMPTS) plain.set(prompt, await generate(target, await drafterFor(target, "none"), { prompt, maxTokens: MAX_TOKENS }));
});

test("the default target is a 1-5M-parameter llama with a context of at least 256 and writes text", () => {
  const info = inspectModelFile(family.target);
  assert.equal(info.architecture, "llama");
  assert.ok(target.contextSize >= 256, `context ${target.contextSize}`);
  const f = openGguf(family.target);
  let params = 0;
  for (const t of f.tensors) params += t.dims.reduce((a: number, b: number) => a * b, 1);
  f.close();
  assert.ok(params >= 1e6 && params <= 5e6, `${params} parameters`);
  for (const [prompt, r] of plain) {
    assert.ok(r.tokens.length >= 16, `${JSON.stringify(prompt)}: only ${r.tokens.length} tokens`);
    assert.match(r.text, /[a-z]+ [a-z]+/i, "words separated by spaces");
  }
});

const CONFIGS: [string, string, MethodOptionValues][] = [
  ["blind", "blind", {}],
  ["prompt-lookup", "prompt-lookup", {}],
  ["prompt-lookup tree (3 candidates)", "prompt-lookup", { candidates: 3 }],
  ["draft (default draft)", "draft", { draftModel: family.draft }],
  ["lookahead", "lookahead", {}],
  ["medusa (default heads, default tree)", "medusa", { medusa: family.medusa }],
  ["eagle (default head, dynamic tree)", "eagle", { eagle: family.eagle }],
];

for (const [name, method, options] of CONFIGS) {
  test(`greedy ${name} on the default target gives exactly the tokens of plain decoding (built-in engine)`, async () => {
    for (const prompt of PROMPTS) {
      const drafter = await drafterFor(target, method, options);
      try {
        const r = await generate(target, drafter, { prompt, maxTokens: MAX_TOKENS, draftMax: 4 });
        assert.deepEqual(r.tokens, plain.get(prompt)!.tokens, `${name} on ${JSON.stringify(prompt.slice(0, 30))}`);
        if (name !== "blind") assert.ok(r.stats.tau > 1, `${name}: tau ${r.stats.tau} (guesses never accepted)`);
      } finally {
        await drafter.dispose?.();
      }
    }
  });
}

test("the target and its draft load in llama.cpp; greedy draft decoding there equals plain decoding there", async () => {
  const llama = await LlamaCppTarget.load(family.target);
  try {
    const prompt = PROMPTS[0];
    const ref = await generate(llama, await drafterFor(llama, "none"), { prompt, maxTokens: 48 });
    assert.ok(ref.tokens.length >= 16);
    const drafter = await drafterFor(llama, "draft", { draftModel: family.draft });
    try {
      const r = await generate(llama, drafter, { prompt, maxTokens: 48, draftMax: 4 });
      assert.deepEqual(r.tokens, ref.tokens);
      assert.ok(r.stats.tau > 1.2, `tau ${r.stats.tau}`);
    } finally {
      await drafter.dispose?.();
    }
  } finally {
    await llama.dispose();
  }
});

test("each model file has a model card with its recipe, training time, held-out loss, samples and tau", () => {
  for (const file of [family.target, family.draft, family.medusa, family.eagle]) {
    const card = join(packageRoot(), "models", file.split("/").pop()!.replace(/\.gguf$/, ".md"));
    assert.ok(existsSync(card), `${card} missing`);
    const text = readFileSync(card, "utf8");
    for (const want of [/specdec train (model|draft|medusa|eagle)/, /training time/i, /held-out/i, /sample/i, /tau|τ/i]) assert.match(text, want, `${card} lacks ${want}`);
  }
});

after(async () => {
  await target?.dispose();
});
