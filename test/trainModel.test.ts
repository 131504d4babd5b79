// Training a tokenizer and a model from plain text: BPE training (bpeTrainer.ts), model training
// (modelTrainer.ts), the saved GGUF in both engines, checkpoint and resume (bit-identical to an
// uninterrupted run, library and CLI, --stop-after and Ctrl-C), `specdec train model`, and
// data-parallel training over worker threads (--threads: deterministic, 1 is the plain loop,
// resumes, errors).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { openGguf } from "../src/gguf/reader.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { bpeTokenizerEntries, END_OF_TEXT, tokenizerFromEntries, trainBpe, writeTokenizerGguf, type BpeTokenizerModel } from "../src/train/bpeTrainer.js";

import { saveCheckpoint } from "../src/train/checkpoint.js";
import { DataParallel } from "../src/train/dataParallel.js";
import { LlamaModel } from "../src/train/llamaModel.js";
import { SeededRng } from "../src/sampling/rng.js";
import { saveModelGguf, trainModel, trainModelAsync, type ModelTrainConfig, type ModelTrainResult } from "../src/train/modelTrainer.js";
import { TrainOptionError } from "../src/train/optionError.js";
import type { Token } from "../src/types.js";
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
    const [pa, pb] = [(await ours.evaluate(probe)).probs!, (await llama.evaluate(probe)).probs!];
    assert.equal(pa.length, probe.length);
    let maxProbDiff = 0;
    for (let i = 0; i < pa.length; i++) for (let v = 0; v < CFG.vocab; v++) maxProbDiff = Math.max(maxProbDiff, Math.abs(pa[i][v] - pb[i][v]));
    assert.ok(maxProbDiff < 1e-3, `max |probability difference| ${maxProbDiff}`);
    await ours.reset();
    await llama.reset();

    // Greedy continuations, 16 tokens each, fed through end-of-text too (a model this small
    // may well end a paragraph early; generate() would stop there).
    const greedy = async (t: BuiltinTarget | LlamaCppTarget, prompt: string) => {
      await t.reset();
      let d = (await t.evaluate(t.tokenize(prompt))).probs!.at(-1)!;
      const out: number[] = [];
      for (let i = 0; i < 16; i++) {
        let best = 0;
        for (let v = 1; v < d.length; v++) if (d[v] > d[best]) best = v;
        out.push(best);
        d = (await t.evaluate([best as Token])).probs![0];
      }
      return out;
    };
    for (const prompt of ["Once upon a time, there was a", "Lily went to the park with her"]) {
      const a = await greedy(ours, prompt);
      assert.deepEqual(await greedy(llama, prompt), a, `greedy tokens differ for ${JSON.stringify(prompt)}`);
    }
  } finally {
    await llama.dispose();
    await ours.dispose();
  }
});

// ---- checkpoint and resume ---------------------------------------------------------------

const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function assertSameRun(a: ModelTrainResult, b: ModelTrainResult): void {
  assert.equal(a.params.length, b.params.length);
  for (let i = 0; i < a.params.length; i++) for (const part of ["value", "m", "v"] as const) assert.ok(sameBits(a.params[i][part], b.params[i][part]), `${a.params[i].name}.${part} differs`);
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(a.val, b.val);
}

test("resume: stopped after N steps and resumed → bit-identical parameters, moments, losses and held-out result; the tokenizer comes from the checkpoint", async () => {
  // The tokenizer is trained here (not given), so the checkpoint must carry it.
  const text = TRAIN.split("\n").slice(0, 300).join("\n");
  const cfg: ModelTrainConfig = { vocab: 300, dim: 16, layers: 1, heads: 2, kvHeads: 1, hidden: 32, context: 16, steps: 12, batch: 2, lr: 1e-2, seed: 9, valText: VAL_LINES.slice(0, 10).join("\n"), valWindows: 4 };
  const full = trainModel(text, cfg);
  assert.equal(full.stopped, false);
  assert.equal(full.step, 12);
  const ckpt = join(tmp, "model.ckpt");
  const part = trainModel(text, cfg, { checkpoint: ckpt, checkpointEvery: 2, stopAfter: 5 });
  assert.equal(part.stopped, true);
  assert.equal(part.step, 5);
  assert.equal(part.val, undefined);
  assert.deepEqual(part.losses, full.losses.slice(0, 5));
  let merges = 0;
  const messages: string[] = [];
  const rest = trainModel(text, cfg, { checkpoint: ckpt, resume: true, onPrepare: () => merges++, onData: (m) => messages.push(m) });
  assert.equal(rest.resumedFrom, 5);
  assert.equal(rest.step, 12);
  assert.equal(merges, 0, "no tokenizer training on resume");
  assert.match(messages[0], /from the checkpoint/);
  assert.deepEqual(rest.tokenizer.merges, full.tokenizer.merges);
  assertSameRun(rest, full);
  // Resumed twice (through the async driver, stopped by shouldStop), still the same.
  const ckpt2 = join(tmp, "model2.ckpt");
  let calls = 0;
  const a = await trainModelAsync(text, cfg, { checkpoint: ckpt2, shouldStop: () => ++calls > 3 });
  assert.equal(a.stopped, true);
  assert.equal(a.step, 3);
  trainModel(text, cfg, { checkpoint: ckpt2, resume: true, stopAfter: 8 });
  assertSameRun(trainModel(text, cfg, { checkpoint: ckpt2, resume: true }), full);

  // Refusals: other options, other data, a missing file, no file named, another kind of checkpoint, a damaged tokenizer.
  assert.throws(() => trainModel(text, { ...cfg, lr: 2e-2 }, { checkpoint: ckpt, resume: true }), /other data or training options/);
  assert.throws(() => trainModel(text + "\nOne more line.", cfg, { checkpoint: ckpt, resume: true }), /other data or training options/);
  assert.throws(() => trainModel(text, { ...cfg, vocab: 301 }, { checkpoint: ckpt, resume: true }), /other data or training options/);
  assert.throws(() => trainModel(text, cfg, { checkpoint: join(tmp, "missing.ckpt"), resume: true }), /does not exist/);
  // The library names its options; the CLI says them as flags (its tests).
  assert.throws(() => trainModel(text, cfg, { resume: true }), (e: unknown) => e instanceof TrainOptionError && /^resume needs checkpoint/.test(e.message) && e.options.join() === "resume,checkpoint");
  const medusaLike = join(tmp, "medusa.ckpt");
  saveCheckpoint(medusaLike, { kind: "medusa-heads", step: 1 }, new Map());
  assert.throws(() => trainModel(text, cfg, { checkpoint: medusaLike, resume: true }), /another kind of training \(medusa-heads/);
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

test("specdec train model: --stop-after then --resume writes the same bytes as a straight run; Ctrl-C saves a checkpoint and says how to resume", async () => {
  const data = join(tmp, "ck.txt");
  writeFileSync(data, TRAIN_ALL.split("\n").slice(0, 120).join("\n"));
  const base = ["train", "model", "--data", data, "--vocab", "280", "--dim", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--hidden", "32", "--context", "16", "--batch", "2", "--quiet"];
  const straight = join(tmp, "straight.gguf"), resumed = join(tmp, "resumed.gguf"), ckpt = join(tmp, "cli.ckpt");
  const a = specdec(...base, "--steps", "10", "--out", straight);
  assert.equal(a.status, 0, a.stderr);
  const b = specdec(...base, "--steps", "10", "--out", resumed, "--checkpoint", ckpt, "--checkpoint-every", "3", "--stop-after", "4");
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /stopped after step 4 of 10; checkpoint saved to /);
  assert.ok(!existsSync(resumed), "no model written when stopped");
  const c = specdec(...base, "--steps", "10", "--out", resumed, "--checkpoint", ckpt, "--resume");
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stderr, "");
  assert.match(c.stdout, /resumed at step 4/);
  assert.ok(readFileSync(resumed).equals(readFileSync(straight)), "resumed model differs from the straight run's");
  // Other options than the checkpoint's: a one-line error (the other refusals are checked at the library level).
  const oneLine = (res: ReturnType<typeof specdec>, pattern: RegExp) => {
    assert.notEqual(res.status, 0);
    const lines = res.stderr.trim().split("\n");
    assert.equal(lines.length, 1, res.stderr);
    assert.match(lines[0], pattern);
  };
  oneLine(specdec(...base, "--steps", "11", "--out", join(tmp, "x.gguf"), "--checkpoint", ckpt, "--resume"), /other data or training options/);

  // Ctrl-C: once the first checkpoint is on disk, SIGINT; the run saves where it is and tells how to resume.
  const sig = join(tmp, "sigint.ckpt");
  const child = spawn(process.execPath, [BIN, ...base, "--steps", "100000", "--out", join(tmp, "sigint.gguf"), "--checkpoint", sig, "--checkpoint-every", "20"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!existsSync(sig) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  child.kill("SIGINT");
  const code = await exited;
  assert.equal(code, 1);
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], /^specdec: error: interrupted at step \d+ of 100000; checkpoint saved to .*sigint\.ckpt: run the same command with --resume to continue$/);
  const at = Number(/step (\d+)/.exec(lines[0])![1]);
  const r = specdec(...base, "--steps", "100000", "--out", join(tmp, "sigint.gguf"), "--checkpoint", sig, "--resume", "--stop-after", String(at + 1));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`stopped after step ${at + 1} of 100000`));
});

// ---- threads (data-parallel) -------------------------------------------------------------

const THREAD_TEXT = TRAIN.split("\n").slice(0, 400).join("\n");
const THREAD_CFG: ModelTrainConfig = { vocab: 320, dim: 32, layers: 2, heads: 4, kvHeads: 2, hidden: 64, context: 24, steps: 40, batch: 4, lr: 1e-2, seed: 11, valText: VAL_LINES.slice(0, 10).join("\n"), valWindows: 4 };

test("threads: 1 is the plain loop (same bits); 2 is bit-identical from run to run, close to 1 thread, and the loss falls", async () => {
  const tokenizer = trainBpe(THREAD_TEXT, { vocabSize: THREAD_CFG.vocab });
  const cfg = { ...THREAD_CFG, tokenizer };
  const plain = trainModel(THREAD_TEXT, cfg);
  assertSameRun(await trainModelAsync(THREAD_TEXT, { ...cfg, threads: 1 }), plain);
  const a = await trainModelAsync(THREAD_TEXT, { ...cfg, threads: 2 });
  const b = await trainModelAsync(THREAD_TEXT, { ...cfg, threads: 2 });
  assertSameRun(a, b);
  assert.equal(a.step, cfg.steps);
  // The same windows and initialisation: the first step's loss is the 1-thread one up to rounding.
  assert.ok(Math.abs(a.losses[0] - plain.losses[0]) < 1e-5, `${a.losses[0]} vs ${plain.losses[0]}`);
  const mean = (l: number[]) => l.reduce((s, x) => s + x, 0) / l.length;
  const first = mean(a.losses.slice(0, 5)), last = mean(a.losses.slice(-5));
  assert.ok(last < first - 0.8, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(Math.abs(last - mean(plain.losses.slice(-5))) < 0.1, `2 threads ${last}, 1 thread ${mean(plain.losses.slice(-5))}`);
  assert.ok(a.val && plain.val && Math.abs(a.val.loss - plain.val.loss) < 0.1, `held-out ${a.val?.loss} vs ${plain.val?.loss}`);
  // The parameters are usable as plain arrays (a GGUF is written from them).
  const out = join(tmp, "threads.gguf");
  saveModelGguf(out, a.params, a.arch, a.tokenizerEntries);
  assert.ok(existsSync(out));
});

test("threads: a stopped run resumes bit-identically; the thread count is part of the checkpoint's options", async () => {
  const cfg: ModelTrainConfig = { ...THREAD_CFG, dim: 16, layers: 1, heads: 2, kvHeads: 1, hidden: 32, context: 16, steps: 10, threads: 2 };
  const full = await trainModelAsync(THREAD_TEXT, cfg);
  const ckpt = join(tmp, "threads.ckpt");
  const part = await trainModelAsync(THREAD_TEXT, cfg, { checkpoint: ckpt, checkpointEvery: 2, stopAfter: 4 });
  assert.equal(part.step, 4);
  assert.deepEqual(part.losses, full.losses.slice(0, 4));
  const rest = await trainModelAsync(THREAD_TEXT, cfg, { checkpoint: ckpt, resume: true });
  assert.equal(rest.resumedFrom, 4);
  assertSameRun(rest, full);
  await assert.rejects(trainModelAsync(THREAD_TEXT, { ...cfg, threads: 1 }, { checkpoint: ckpt, resume: true }), /other data or training options/);
});

test("threads: refusals (batch not divisible, the synchronous driver) and a worker's error as one line", async () => {
  await assert.rejects(trainModelAsync(THREAD_TEXT, { ...THREAD_CFG, batch: 3, threads: 2 }), (e: unknown) => e instanceof TrainOptionError && e.message === "batch 3 is not divisible by threads 2");
  await assert.rejects(trainModelAsync(THREAD_TEXT, { ...THREAD_CFG, threads: 0 }), /bad thread count 0/);
  assert.throws(() => trainModel(THREAD_TEXT, { ...THREAD_CFG, threads: 2 }), /needs trainModelAsync/);
  // A token outside the vocabulary in the worker's shard: its step fails with a one-line error.
  const arch = { vocab: 64, dim: 16, layers: 1, heads: 2, kvHeads: 1, hidden: 32, normEps: 1e-5, ropeBase: 10000 };
  const dp = new DataParallel(new LlamaModel(arch, new SeededRng(1)), 4, 8, 2);
  try {
    await dp.ready();
    for (let i = 0; i < dp.inputs.length; i++) (dp.inputs[i] = i % 64), (dp.labels[i] = (i + 1) % 64);
    await dp.step();
    const l = dp.finish();
    assert.ok(l.rows === 32 && Number.isFinite(l.ce), JSON.stringify(l));
    dp.inputs[dp.inputs.length - 1] = 1000;
    await assert.rejects(dp.step(), (e: Error) => e.name === "SpecdecError" && /^training thread 1: token 1000 outside the vocabulary$/.test(e.message));
  } finally {
    dp.close();
  }
});

test("specdec train model --threads 2: the same bytes twice, exits when done; --threads 1 is the default run; one-line error when --batch is not divisible", () => {
  const data = join(tmp, "threads.txt");
  writeFileSync(data, TRAIN_ALL.split("\n").slice(0, 120).join("\n"));
  const base = ["train", "model", "--data", data, "--vocab", "280", "--dim", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--hidden", "32", "--context", "16", "--batch", "4", "--steps", "6", "--quiet"];
  const outs = ["t2a", "t2b", "t1", "plain"].map((n) => join(tmp, `${n}.gguf`));
  for (const [i, extra] of [["--threads", "2"], ["--threads", "2"], ["--threads", "1"], []].entries()) {
    const r = specdec(...base, ...extra, "--out", outs[i]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
  }
  assert.ok(readFileSync(outs[0]).equals(readFileSync(outs[1])), "two --threads 2 runs differ");
  assert.ok(readFileSync(outs[2]).equals(readFileSync(outs[3])), "--threads 1 differs from the default");
  const bad = specdec(...base, "--batch", "3", "--threads", "2", "--out", join(tmp, "bad.gguf"));
  assert.notEqual(bad.status, 0);
  assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  assert.match(bad.stderr, /--batch 3 is not divisible by --threads 2/);
});
