// Distilling a draft model (draftTrainer.ts, llamaModel.ts): gradient checks of the layers and
// the whole model, a tiny fit, determinism, checkpoint and resume (bit-identical to an
// uninterrupted run; refusals of other options, data, kinds and targets), the saved GGUF in both
// engines, and `specdec train draft`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { NoDrafter } from "../src/drafters/none.js";
import { openGguf } from "../src/gguf/reader.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { spawnSync } from "node:child_process";
import { LlamaModel, LlamaPass, distillLoss } from "../src/train/llamaModel.js";
import { saveDraftGguf, trainDraft, trainDraftAsync, type DraftTrainConfig, type DraftTrainResult } from "../src/train/draftTrainer.js";
import { saveModelGguf, trainModel } from "../src/train/modelTrainer.js";
import { SeededRng, standardNormal, uniformInt } from "../src/sampling/rng.js";
import {
  attentionBackward,
  attentionForward,
  embeddingBackward,
  embeddingForward,
  rmsNormBackward,
  rmsNormForward,
  rope,
  ropeTables,
  swigluBackward,
  swigluForward,
  type AttentionShape,
} from "../src/train/transformerLayers.js";
import { checkDirectionalGradients, checkGrad, maxTrainVsEngineLogitDiff } from "./support/trainChecks.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const TRAIN = readFileSync(sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "utf8").split("\n").slice(0, 400).join("\n");
const VAL = readFileSync(sharedFile("corpora", "tinystories", "tinystories_val_head.txt"), "utf8").split("\n").slice(0, 40).join("\n");
const tmp = mkdtempSync(join(tmpdir(), "specdec-draft-"));
let target: BuiltinTarget;
let fit: DraftTrainResult;
const FIT: DraftTrainConfig = { dim: 16, layers: 2, heads: 4, kvHeads: 2, hidden: 32, context: 32, steps: 60, batch: 4, lr: 1e-2, seed: 3, alpha: 0.5, data: "corpus", maxWindows: 8, valWindows: 0 };

before(async () => {
  target = await BuiltinTarget.load(MODEL);
  fit = trainDraft(target, TRAIN, "", FIT);
});
after(async () => {
  await target?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// ---- finite-difference gradient checks, in f64 --------------------------------------------
// Loss L = Σ c ⊙ y for a fixed random c, so dL/dy = c. Each input gradient entry is compared
// with a central difference (h = 1e-5); in f64 both agree to ~1e-9, tolerance 1e-6 · (1 + |g|).

const rng = new SeededRng(42);
const randn = (n: number, std = 1) => Float64Array.from({ length: n }, () => std * standardNormal(rng));
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i], 0);


test("gradient check: embedding", () => {
  const V = 5, dim = 3, tokens = [1, 4, 1, 0], N = tokens.length;
  const E = randn(V * dim), c = randn(N * dim), y = new Float64Array(N * dim), dE = new Float64Array(V * dim);
  const loss = () => (embeddingForward(tokens, E, N, dim, y), dot(c, y));
  embeddingBackward(tokens, c, N, dim, dE);
  checkGrad("dE", E, dE, loss);
});

test("gradient check: RMSNorm (input and weight)", () => {
  const N = 3, n = 6, eps = 1e-5;
  const x = randn(N * n), w = randn(n), c = randn(N * n), y = new Float64Array(N * n), inv = new Float64Array(N);
  const loss = () => (rmsNormForward(x, w, N, n, eps, y, inv), dot(c, y));
  loss();
  const dx = new Float64Array(N * n), dw = new Float64Array(n);
  rmsNormBackward(x, w, inv, c, N, n, dx, dw, false);
  checkGrad("dx", x, dx, loss);
  checkGrad("dw", w, dw, loss);
  // accumulate mode adds to what is there
  const acc = new Float64Array(N * n).fill(1);
  rmsNormBackward(x, w, inv, c, N, n, acc, null, true);
  acc.forEach((v, i) => assert.ok(Math.abs(v - 1 - dx[i]) < 1e-12));
});

test("gradient check: RoPE (normal pairs) and its inverse", () => {
  const T = 4, N = 8, nHeads = 2, hd = 6, width = nHeads * hd;
  const { cos, sin } = ropeTables(T, hd, 10000);
  const x = randn(N * width), c = randn(N * width), y = new Float64Array(N * width);
  const loss = () => (y.set(x), rope(y, N, T, nHeads, hd, hd, cos, sin, false), dot(c, y));
  const dx = Float64Array.from(c);
  rope(dx, N, T, nHeads, hd, hd, cos, sin, true);
  checkGrad("dx", x, dx, loss);
  // inverse ∘ forward = identity
  y.set(x);
  rope(y, N, T, nHeads, hd, hd, cos, sin, false);
  rope(y, N, T, nHeads, hd, hd, cos, sin, true);
  y.forEach((v, i) => assert.ok(Math.abs(v - x[i]) < 1e-12));
});

test("gradient check: causal grouped-query attention", () => {
  const s: AttentionShape = { B: 2, T: 5, nHeads: 4, nKvHeads: 2, headDim: 3 };
  const N = s.B * s.T, dim = s.nHeads * s.headDim, kvDim = s.nKvHeads * s.headDim;
  const q = randn(N * dim), k = randn(N * kvDim), v = randn(N * kvDim), c = randn(N * dim);
  const probs = new Float64Array(s.B * s.nHeads * s.T * s.T), out = new Float64Array(N * dim);
  const loss = () => (attentionForward(q, k, v, s, probs, out), dot(c, out));
  loss();
  const dq = new Float64Array(N * dim), dk = new Float64Array(N * kvDim), dv = new Float64Array(N * kvDim);
  attentionBackward(q, k, v, s, probs, c, dq, dk, dv, new Float64Array(s.T));
  checkGrad("dq", q, dq, loss);
  checkGrad("dk", k, dk, loss);
  checkGrad("dv", v, dv, loss);
  // causality: the first token of a window ignores the rest
  const before = out.slice(0, dim);
  for (let i = 1; i < s.T; i++) k[i * kvDim] += 5;
  loss();
  assert.deepEqual(out.slice(0, dim), before);
});

test("gradient check: SwiGLU", () => {
  const n = 12;
  const g = randn(n, 2), u = randn(n), c = randn(n), h = new Float64Array(n);
  const loss = () => (swigluForward(g, u, n, h), dot(c, h));
  const dg = new Float64Array(n), du = new Float64Array(n);
  swigluBackward(g, u, c, n, dg, du);
  checkGrad("dg", g, dg, loss);
  checkGrad("du", u, du, loss);
});

// The whole model (f32, with the tied output projection and the distillation loss): for each
// parameter tensor, the directional derivative along a random direction d, central difference
// with h = 1e-3 in f32, must match g · d within 1% + 2e-4 (f32 rounding of the loss and the
// curvature limit this; the difference shrinks as h² down to h ≈ 1e-3, measured).
test("gradient check: whole llama model, every parameter tensor (tied output, KL + CE loss)", () => {
  const arch = { vocab: 11, dim: 8, layers: 2, heads: 4, kvHeads: 2, hidden: 12, normEps: 1e-5, ropeBase: 10000 };
  const r = new SeededRng(7);
  const model = new LlamaModel(arch, r);
  for (const p of model.params) for (let i = 0; i < p.value.length; i++) p.value[i] = p.shape.length === 2 ? p.value[i] * 5 : 1 + 0.3 * standardNormal(r); // larger weights: real curvature
  const B = 2, T = 5, N = B * T, V = arch.vocab;
  const pass = new LlamaPass(model, B, T);
  const tokens = Int32Array.from({ length: N }, () => uniformInt(r, V));
  const labels = Int32Array.from({ length: N }, (_, i) => (i === 3 ? -1 : uniformInt(r, V)));
  const p = new Float32Array(N * V);
  for (let row = 0; row < N; row++) {
    let s = 0;
    for (let v = 0; v < V; v++) s += p[row * V + v] = Math.exp(standardNormal(r));
    for (let v = 0; v < V; v++) p[row * V + v] /= s;
  }
  const dlogits = new Float32Array(N * V);
  const loss = () => distillLoss(pass.forward(tokens), p, labels, 0.7, N, V, null).loss;
  distillLoss(pass.forward(tokens), p, labels, 0.7, N, V, dlogits);
  for (const q of model.params) q.grad.fill(0);
  pass.backward(dlogits);
  checkDirectionalGradients(model.params, loss, r);
});

// ---- training ----------------------------------------------------------------------------

test("a tiny fit: the loss falls", () => {
  const l = fit.losses;
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const first = mean(l.slice(0, 5)), last = mean(l.slice(-5));
  assert.ok(last < 0.6 * first, `loss ${first.toFixed(3)} → ${last.toFixed(3)}`);
});

test("deterministic under a seed: two short runs give bit-identical parameters", () => {
  const cfg: DraftTrainConfig = { ...FIT, steps: 4, data: "greedy", alpha: 0.8, context: 24, maxWindows: 6 };
  const a = trainDraft(target, TRAIN, VAL, { ...cfg, valWindows: 2 });
  const b = trainDraft(target, TRAIN, VAL, { ...cfg, valWindows: 2 });
  const c = trainDraft(target, TRAIN, "", { ...cfg, seed: cfg.seed + 1 });
  assert.deepEqual(a.losses, b.losses);
  assert.equal(a.val?.kl, b.val?.kl);
  for (let i = 0; i < a.params.length; i++) assert.ok(Buffer.from(a.params[i].value.buffer).equals(Buffer.from(b.params[i].value.buffer)), a.params[i].name);
  assert.ok(!Buffer.from(a.params[0].value.buffer).equals(Buffer.from(c.params[0].value.buffer)), "another seed gives another model");
});

test("resume: stopped after N steps and resumed → bit-identical parameters, moments, losses and held-out result; windows come from the checkpoint", async () => {
  const cfg: DraftTrainConfig = { ...FIT, steps: 9, data: "greedy", alpha: 0.5, context: 24, maxWindows: 5, valWindows: 2 };
  const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  const assertSameRun = (a: DraftTrainResult, b: DraftTrainResult) => {
    for (let i = 0; i < a.params.length; i++) for (const part of ["value", "m", "v"] as const) assert.ok(same(a.params[i][part], b.params[i][part]), `${a.params[i].name}.${part} differs`);
    assert.deepEqual(a.losses, b.losses);
    assert.deepEqual(a.val, b.val);
  };
  const full = trainDraft(target, TRAIN, VAL, cfg);
  assert.equal(full.step, 9);
  assert.ok(full.val);
  const ckpt = join(tmp, "draft.ckpt");
  // Stopped in the middle of an epoch (5 windows, batch 4), with checkpoints on the way.
  const part = trainDraft(target, TRAIN, VAL, cfg, { checkpoint: ckpt, checkpointEvery: 2, stopAfter: 3 });
  assert.equal(part.stopped, true);
  assert.equal(part.step, 3);
  assert.equal(part.val, undefined);
  let windows = 0;
  const messages: string[] = [];
  const rest = trainDraft(target, TRAIN, VAL, cfg, { checkpoint: ckpt, resume: true, onPrepare: () => windows++, onData: (m) => messages.push(m) });
  assert.equal(rest.resumedFrom, 3);
  assert.equal(rest.step, 9);
  assert.equal(windows, 0, "windows are not generated again");
  assert.match(messages[0], /from the checkpoint/);
  assertSameRun(rest, full);
  // Through the async driver, stopped by shouldStop at step 0, then resumed.
  const ckpt2 = join(tmp, "draft2.ckpt");
  const stopped = await trainDraftAsync(target, TRAIN, VAL, cfg, { checkpoint: ckpt2, shouldStop: () => true });
  assert.equal(stopped.step, 0);
  assertSameRun(await trainDraftAsync(target, TRAIN, VAL, cfg, { checkpoint: ckpt2, resume: true }), full);

  // Refusals: other options or data, a missing file, a model-training checkpoint, another target.
  assert.throws(() => trainDraft(target, TRAIN, VAL, { ...cfg, alpha: 0.6 }, { checkpoint: ckpt, resume: true }), /other data or training options/);
  assert.throws(() => trainDraft(target, TRAIN, VAL.slice(1), cfg, { checkpoint: ckpt, resume: true }), /other data or training options/);
  assert.throws(() => trainDraft(target, TRAIN, VAL, cfg, { checkpoint: join(tmp, "missing.ckpt"), resume: true }), /does not exist/);
  const modelCkpt = join(tmp, "model.ckpt");
  const small = TRAIN.split("\n").slice(0, 60).join("\n");
  const mcfg = { vocab: 270, dim: 8, layers: 1, heads: 2, kvHeads: 1, hidden: 8, context: 8, steps: 2, batch: 1, lr: 1e-2, seed: 1 };
  const m = trainModel(small, mcfg, { checkpoint: modelCkpt });
  assert.throws(() => trainDraft(target, TRAIN, VAL, cfg, { checkpoint: modelCkpt, resume: true }), /another kind of training \(llama-model/);
  // A tiny llama model of another vocabulary as the target: its checkpoint check names the model.
  const otherPath = join(tmp, "other-target.gguf");
  saveModelGguf(otherPath, m.params, m.arch, m.tokenizerEntries, { contextLength: 64 });
  const other = await BuiltinTarget.load(otherPath);
  try {
    assert.throws(() => trainDraft(other, TRAIN, VAL, { ...cfg, data: "corpus" }, { checkpoint: ckpt, resume: true }), /checkpoint made for another target model/);
  } finally {
    await other.dispose();
  }
});

// ---- the GGUF file ----------------------------------------------------------------------

test("saved draft: llama GGUF with the target's tokenizer, same logits as training, same greedy tokens in both engines", async () => {
  const path = join(tmp, "draft.gguf");
  saveDraftGguf(path, fit.params, FIT, target);
  assert.throws(() => saveDraftGguf(path, fit.params, FIT, target), /already exists/);

  // Every tokenizer.* key of the target, unchanged.
  const [ft, fd] = [openGguf(MODEL), openGguf(path)];
  const tokKeys = [...ft.metadata.keys()].filter((k) => k.startsWith("tokenizer."));
  assert.ok(tokKeys.length >= 5);
  for (const k of tokKeys) assert.deepEqual(fd.metadata.get(k), ft.metadata.get(k), k);
  assert.equal(fd.tensors.some((t) => t.name === "output.weight"), false, "tied output");
  ft.close();
  fd.close();

  // The built-in engine's forward pass equals the training forward pass.
  const ours = await BuiltinTarget.load(path);
  const tokens = target.tokenize("Once upon a time, there was a little dog named Max. Max liked to play");
  const maxDiff = maxTrainVsEngineLogitDiff(fit.model, ours, tokens);
  assert.ok(maxDiff < 1e-4, `max |logit difference| ${maxDiff}`);
  await ours.reset();

  // Same greedy continuation in our engine and in llama.cpp.
  const llama = await LlamaCppTarget.load(path);
  try {
    for (const prompt of ["Once upon a time", "Lily went to the park with her mom.", "Tom had a big red ball."]) {
      const a = await generate(ours, new NoDrafter(), { prompt, maxTokens: 24 });
      const b = await generate(llama, new NoDrafter(), { prompt, maxTokens: 24 });
      assert.ok(a.tokens.length > 0);
      assert.deepEqual(b.tokens, a.tokens, `greedy tokens differ for ${JSON.stringify(prompt)}`);
    }
  } finally {
    await llama.dispose();
    await ours.dispose();
  }
});

test("specdec train draft: writes a draft that --method draft loads on both backends; never overwrites", () => {
  const dir = mkdtempSync(join(tmpdir(), "specdec-train-draft-cli-"));
  const bin = join(PROJECT_ROOT, "bin", "specdec.js");
  const model = sharedFile("models", "stories260K.gguf");
  const out = join(dir, "draft.gguf");
  const args = ["train", "draft", "--model", model, "--data", sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "--steps", "3", "--windows", "4", "--context", "32", "--dim", "16", "--hidden", "32", "--out", out, "--quiet"];
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote /);
  const again = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  assert.notEqual(again.status, 0);
  assert.equal(again.stderr.trim().split("\n").length, 1);
  assert.match(again.stderr, /already exists/);
  for (const backend of ["builtin", "llama.cpp"]) {
    const g = spawnSync(process.execPath, [bin, "generate", "--backend", backend, "--model", model, "--draft-model", out, "--method", "draft", "--prompt", "Once upon a time", "--max-tokens", "16", "--json"], { encoding: "utf8" });
    assert.equal(g.status, 0, g.stderr);
    assert.equal(JSON.parse(g.stdout).tokens.length, 16);
  }
  rmSync(dir, { recursive: true, force: true });
});
