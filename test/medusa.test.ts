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
import { saveMedusaHeads, type MedusaHeadWeights } from "../src/medusa/medusaHeads.js";
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

/**
 * Heads with known weights: the residual blocks are zero (SiLU(0) = 0, so h passes through)
 * and head k's projection is fitted — a multiclass perceptron — so that it maps the target's
 * hidden state at each position of a known greedy sequence to the token k + 2 positions later
 * (k = 0-based; the token right after is the target's own).
 */
function fitHeads(seq: readonly Token[], hidden: Float32Array, from: number): MedusaHeadWeights[] {
  const dim = target.hiddenSize, V = target.vocabSize;
  return Array.from({ length: K }, (_, k) => {
    const proj = new Float32Array(V * dim);
    const examples: [number, number][] = [];
    for (let p = from; p + 2 + k < seq.length; p++) examples.push([p, seq[p + 2 + k]]);
    for (let epoch = 0; epoch < 300; epoch++) {
      let errors = 0;
      for (const [p, y] of examples) {
        const h = hidden.subarray(p * dim, (p + 1) * dim);
        let best = 0, bestScore = -Infinity;
        for (let v = 0; v < V; v++) {
          let s = 0;
          for (let i = 0; i < dim; i++) s += proj[v * dim + i] * h[i];
          if (s > bestScore) [best, bestScore] = [v, s];
        }
        if (best === y) continue;
        errors++;
        for (let i = 0; i < dim; i++) {
          proj[y * dim + i] += h[i];
          proj[best * dim + i] -= h[i];
        }
      }
      if (errors === 0) break;
      if (epoch === 299) throw new Error(`head ${k}: the perceptron did not separate the sequence (${errors} errors)`);
    }
    return { res: new Float32Array(dim * dim), bias: new Float32Array(dim), proj };
  });
}

before(async () => {
  target = await BuiltinTarget.load(MODEL);
  const plain = await generate(target, await createDrafter({ method: "none" }), { prompt: PROMPT, maxTokens: LENGTH });
  reference = plain.tokens;
  // Hidden states of the whole sequence, (length, dim), from the same engine.
  const prompt = target.tokenize(PROMPT);
  const seq = [...prompt, ...reference];
  const e = target.engine;
  e.truncate(0);
  const hidden = new Float32Array(seq.length * target.hiddenSize);
  for (let from = 0; from < seq.length; from += e.maxBatch) {
    const chunk = seq.slice(from, from + e.maxBatch);
    hidden.set(e.forward(chunk, { logits: "none", hidden: true }).hidden, from * target.hiddenSize);
  }
  headsPath = join(tmp, "heads.gguf");
  saveMedusaHeads(headsPath, fitHeads(seq, hidden, prompt.length - 1), { hiddenSize: target.hiddenSize, vocabSize: target.vocabSize, vocabFingerprint: target.vocabFingerprint, name: "stories260K" });
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
