// Training a tokenizer and a model from plain text: BPE training (bpeTrainer.ts), model training
// (modelTrainer.ts), the saved GGUF in both engines, and `specdec train model`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/backends/builtin.js";
import { LlamaCppTarget } from "../src/backends/llamaCpp.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { NoDrafter } from "../src/drafters/noDrafter.js";
import { openGguf } from "../src/gguf/reader.js";
import { PROJECT_ROOT, sharedFile } from "../src/sharedData.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { bpeTokenizerEntries, END_OF_TEXT, tokenizerFromEntries, trainBpe, writeTokenizerGguf, type BpeTokenizerModel } from "../src/train/bpeTrainer.js";

import { saveModelGguf, trainModel, type ModelTrainConfig, type ModelTrainResult } from "../src/train/modelTrainer.js";
import { maxTrainVsEngineLogitDiff } from "./support/trainChecks.js";

const CORPUS = sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt");
const TRAIN_ALL = readFileSync(CORPUS, "utf8");
const TRAIN = TRAIN_ALL.split("\n").slice(0, 1500).join("\n");
const VAL_LINES = readFileSync(sharedFile("corpora", "tinystories", "tinystories_val_head.txt"), "utf8").split("\n").filter((l) => l.trim());
const VAL = VAL_LINES.slice(0, 200).join("\n");
const tmp = mkdtempSync(join(tmpdir(), "specdec-train-model-"));
const MODEL_PATH = join(tmp, "model.gguf");

const CFG: ModelTrainConfig = { vocab: 512, dim: 32, layers: 2, heads: 4, kvHeads: 2, hidden: 64, context: 48, steps: 150, batch: 4, lr: 1e-2, seed: 5, valText: VAL_LINES.slice(0, 20).join("\n"), valWindows: 8 };
let bpe: BpeTokenizerModel;
let fit: ModelTrainResult;

before(() => {
  bpe = trainBpe(TRAIN, { vocabSize: CFG.vocab });
  fit = trainModel(TRAIN, { ...CFG, tokenizer: bpe });
  saveModelGguf(MODEL_PATH, fit.params, fit.arch, fit.tokenizerEntries);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- BPE ---------------------------------------------------------------------------------

test("BPE: merges on a hand-checked text (most frequent pair first, ties by lower ids), then <|endoftext|>", () => {
  // words: "ab", " ab" ×2, " cd"; pairs a·b 3, Ġ·a 2, Ġ·c 1, c·d 1
  const m = trainBpe("ab ab ab cd", { vocabSize: 300 });
  assert.deepEqual(m.merges, ["a b", "Ġ ab", "Ġ c", "Ġc d"]); // then no pair is left
  assert.deepEqual(m.tokens.slice(256), ["ab", "Ġab", "Ġc", "Ġcd", END_OF_TEXT]);
  assert.equal(m.tokens[32], "Ġ"); // byte order, GPT-2 alphabet
  assert.equal(m.bos, 260);
  assert.equal(m.eos, 260);
  assert.deepEqual(m.tokenTypes.slice(-2), [1, 3]);
});

test("BPE: deterministic, the requested size, round trip and compression on held-out text", () => {
  const again = trainBpe(TRAIN, { vocabSize: CFG.vocab });
  assert.deepEqual(again.merges, bpe.merges);
  assert.deepEqual(again.tokens, bpe.tokens);
  assert.equal(bpe.tokens.length, CFG.vocab);
  assert.equal(bpe.merges.length, CFG.vocab - 257);
  assert.equal(bpe.merges[0], "Ġ t"); // the most frequent pair of English text
  assert.equal(new Set(bpe.tokens).size, bpe.tokens.length, "token texts are distinct");
  assert.equal(new Set(bpe.merges).size, bpe.merges.length, "merges are distinct");

  const path = join(tmp, "vocab.gguf");
  writeTokenizerGguf(path, bpe);
  const f = openGguf(path);
  const tok = loadTokenizer(f);
  f.close();
  assert.equal(tok.model, "gpt2");
  assert.equal(tok.pre, "gpt-2");
  assert.equal(tok.bos, CFG.vocab - 1);
  assert.equal(tok.addBos, true);
  const ids = tok.tokenize(VAL);
  assert.equal(tok.detokenize(ids, { cleanSpaces: false }), VAL);
  const bytes = Buffer.byteLength(VAL);
  assert.ok(ids.length < 0.5 * bytes, `${ids.length} tokens for ${bytes} bytes`);
  // Odd text round-trips too (bytes never seen in training fall back to byte tokens).
  for (const s of ["Ünïcödé — 日本語 🙂 tabs\tand  spaces\n\nnew lines", "  leading", "x'S 'll 12345 !!!"]) assert.equal(tok.detokenize(tok.tokenize(s), { cleanSpaces: false }), s);
  // The in-memory tokenizer is the same as the file's.
  assert.deepEqual(tokenizerFromEntries(bpeTokenizerEntries(bpe)).tokenize(VAL), ids);
});

// ---- the model ---------------------------------------------------------------------------

test("a tiny model trained from scratch: the loss falls, held-out loss is evaluated", () => {
  const l = fit.losses;
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const first = mean(l.slice(0, 5)), last = mean(l.slice(-5));
  assert.ok(first > 5.5, `initial loss ${first} ≈ ln ${CFG.vocab}`);
  assert.ok(last < first - 1.2, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(fit.val && fit.val.loss < first - 1, `held-out ${fit.val?.loss}`);
});

test("saved model: llama GGUF; llama.cpp tokenizes as we do; same logits as training; same greedy tokens in both engines", async () => {
  assert.throws(() => saveModelGguf(MODEL_PATH, fit.params, fit.arch, fit.tokenizerEntries), /already exists/);
  const f = openGguf(MODEL_PATH);
  assert.equal(f.metadata.get("general.architecture")?.value, "llama");
  assert.equal(f.metadata.get("tokenizer.ggml.pre")?.value, "gpt-2");
  assert.equal(f.tensors.some((t) => t.name === "output.weight"), false, "tied output");
  f.close();

  const ours = await BuiltinTarget.load(MODEL_PATH);
  const llama = await LlamaCppTarget.load(MODEL_PATH);
  try {
    // Tokenization: llama.cpp with the learned merges = ours.
    const texts = [...VAL_LINES.slice(300, 320), VAL_LINES.slice(400, 600).join("\n"), "Hello, world! It's 2024: 3.14159 — naïve café 🙂\n\n  two  spaces\tand tabs", "don't won't they're I've we'll he'd 'S"];
    for (const text of texts) assert.deepEqual(llama.tokenize(text, false), ours.tokenize(text, false), `tokens differ for ${JSON.stringify(text.slice(0, 40))}`);
    assert.deepEqual(llama.tokenize("Once", true), ours.tokenize("Once", true));
    assert.equal(ours.tokenize("Once", true)[0], CFG.vocab - 1, "BOS = <|endoftext|>");

    // The built-in engine's forward pass equals the training forward pass.
    const tokens = ours.tokenize("Once upon a time, there was a little dog named Max.");
    const maxDiff = maxTrainVsEngineLogitDiff(fit.model, ours, tokens);
    assert.ok(maxDiff < 1e-4, `max |logit difference| ${maxDiff}`);
    await ours.reset();

    // Next-token distributions at every position agree between llama.cpp and the built-in engine.
    const probe = ours.tokenize("Lily went to the park with her mom. She saw a big dog.");
    const [pa, pb] = [await ours.evaluate(probe), await llama.evaluate(probe)];
    assert.equal(pa.length, probe.length);
    let maxProbDiff = 0;
    for (let i = 0; i < pa.length; i++) for (let v = 0; v < CFG.vocab; v++) maxProbDiff = Math.max(maxProbDiff, Math.abs(pa[i][v] - pb[i][v]));
    assert.ok(maxProbDiff < 1e-3, `max |probability difference| ${maxProbDiff}`);
    await ours.reset();
    await llama.reset();

    for (const prompt of ["Once upon a time, there was a", "Lily went to the park with her"]) {
      const a = await generate(ours, new NoDrafter(), { prompt, maxTokens: 16 });
      const b = await generate(llama, new NoDrafter(), { prompt, maxTokens: 16 });
      assert.equal(a.tokens.length, 16);
      assert.deepEqual(b.tokens, a.tokens, `greedy tokens differ for ${JSON.stringify(prompt)}`);
    }
  } finally {
    await llama.dispose();
    await ours.dispose();
  }
});

// ---- CLI ---------------------------------------------------------------------------------

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const specdec = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000 });

test("specdec train model: trains and writes a model; refuses to overwrite; one-line errors on an empty corpus", () => {
  const data = join(tmp, "small.txt");
  writeFileSync(data, TRAIN_ALL.split("\n").slice(0, 200).join("\n"));
  const out = join(tmp, "cli.gguf");
  const args = ["train", "model", "--data", data, "--out", out, "--vocab", "300", "--dim", "16", "--hidden", "32", "--context", "16", "--steps", "3", "--batch", "2", "--quiet"];
  const r = specdec(...args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote /);
  assert.equal(r.stderr, "");
  const f = openGguf(out);
  assert.equal((f.metadata.get("tokenizer.ggml.tokens")?.value as { items: readonly unknown[] }).items.length, 300);
  f.close();

  const oneLine = (res: ReturnType<typeof specdec>, pattern: RegExp) => {
    assert.notEqual(res.status, 0);
    const lines = res.stderr.trim().split("\n");
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0], pattern);
  };
  oneLine(specdec(...args), /already exists/);
  const empty = join(tmp, "empty.txt");
  writeFileSync(empty, "");
  oneLine(specdec("train", "model", "--data", empty, "--out", join(tmp, "e.gguf")), /empty/);
  writeFileSync(empty, "  \n\n ");
  oneLine(specdec("train", "model", "--data", empty, "--out", join(tmp, "e.gguf")), /no text/);
  oneLine(specdec("train", "model", "--data", data, "--out", join(tmp, "v.gguf"), "--vocab", "100"), /vocab/);
});
