import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/backends/builtin.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { chainChoices } from "../src/draftTree.js";
import { createDrafter } from "../src/methods.js";
import { saveMedusaHeads } from "../src/medusa/medusaHeads.js";
import { fitMedusaHeads } from "../src/medusa/fitHeads.js";
import { PROJECT_ROOT, sharedFile } from "../src/sharedData.js";
import type { Token } from "../src/types.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const PROMPT = "Tom had a red ball. He liked to";
const K = 4;
const LENGTH = 60;
const tmp = mkdtempSync(join(tmpdir(), "specdec-medusa-"));
let target: BuiltinTarget;
let reference: Token[];
let headsPath: string;

before(async () => {
  target = await BuiltinTarget.load(MODEL);
  const plain = await generate(target, await createDrafter({ method: "none" }), { prompt: PROMPT, maxTokens: LENGTH });
  reference = plain.tokens;
  // Heads with known weights: projections fitted so head k maps the hidden state at each
  // position of the reference to the token k + 2 positions later.
  const prompt = target.tokenize(PROMPT);
  const { heads, accuracy } = fitMedusaHeads(target, [{ seq: [...prompt, ...reference], from: prompt.length - 1 }], K);
  assert.deepEqual(accuracy, new Array(K).fill(1), `the fitted heads must know the sequence: ${accuracy.join(", ")}`);
  headsPath = join(tmp, "heads.gguf");
  saveMedusaHeads(headsPath, heads, { hiddenSize: target.hiddenSize, vocabSize: target.vocabSize, vocabFingerprint: target.vocabFingerprint, name: "stories260K" });
});
after(async () => target?.dispose());

test("Medusa heads that know the sequence reach tau close to K + 1, output unchanged", async (t) => {
  const drafter = await createDrafter({ method: "medusa", medusaPath: headsPath, target, treeChoices: chainChoices(K) });
  const r = await generate(target, drafter, { prompt: PROMPT, maxTokens: LENGTH, draftMax: K });
  assert.deepEqual(r.tokens, reference);
  t.diagnostic(`medusa chain of ${K}: tau ${r.stats.tau.toFixed(3)}`);
  assert.ok(r.stats.tau > 0.85 * (K + 1), `tau ${r.stats.tau} for K = ${K}`);
});

test("Medusa with the default tree shape and with sampling stays exact / reproducible", async (t) => {
  const drafter = await createDrafter({ method: "medusa", medusaPath: headsPath, target });
  const greedy = await generate(target, drafter, { prompt: PROMPT, maxTokens: LENGTH, draftMax: K });
  assert.deepEqual(greedy.tokens, reference);
  t.diagnostic(`medusa default tree: tau ${greedy.stats.tau.toFixed(3)}`);
  assert.ok(greedy.stats.tau > 2, `tau ${greedy.stats.tau}`);
  const a = await generate(target, drafter, { prompt: PROMPT, maxTokens: 40, draftMax: K, sampling: { temperature: 0.7, seed: 3 } });
  const b = await generate(target, drafter, { prompt: PROMPT, maxTokens: 40, draftMax: K, sampling: { temperature: 0.7, seed: 3 } });
  assert.deepEqual(a.tokens, b.tokens);
});

test("Medusa heads made for another model, and Medusa on llama.cpp, are clear errors", async () => {
  const other = join(tmp, "other.gguf");
  const dim = target.hiddenSize;
  saveMedusaHeads(other, [{ res: new Float32Array(dim * dim), bias: new Float32Array(dim) }], { hiddenSize: dim, vocabSize: target.vocabSize, vocabFingerprint: "0".repeat(64) });
  await assert.rejects(createDrafter({ method: "medusa", medusaPath: other, target }), /another vocabulary/);
  const wide = join(tmp, "wide.gguf");
  saveMedusaHeads(wide, [{ res: new Float32Array(4 * dim * dim), bias: new Float32Array(2 * dim) }], { hiddenSize: 2 * dim, vocabSize: target.vocabSize, vocabFingerprint: target.vocabFingerprint });
  await assert.rejects(createDrafter({ method: "medusa", medusaPath: wide, target }), /another model/);
  await assert.rejects(createDrafter({ method: "medusa", medusaPath: MODEL, target }), /not a Medusa heads file/);
  assert.throws(() => saveMedusaHeads(other, [], { hiddenSize: dim, vocabSize: 1, vocabFingerprint: "" }), /exist/);

  const cli = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--model", MODEL, "--prompt", "hi", ...args], { encoding: "utf8" });
  for (const [args, pattern] of [
    [["--method", "medusa", "--medusa", headsPath], /--backend builtin/],
    [["--backend", "builtin", "--method", "medusa", "--medusa", other], /another vocabulary/],
    [["--backend", "builtin", "--method", "medusa", "--medusa", headsPath, "--tree", "0;0,0;1,1"], /no parent/],
    [["--backend", "builtin", "--method", "medusa"], /needs its heads/],
  ] as const) {
    const r = cli(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  const ok = cli("--backend", "builtin", "--method", "medusa", "--medusa", headsPath, "--tree", "0;1;0,0;0,0,0", "--max-tokens", "20");
  assert.equal(ok.status, 0, ok.stderr);
});
