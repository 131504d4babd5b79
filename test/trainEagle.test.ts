// Training an EAGLE head (eagleModel.ts, eagleTrainer.ts): gradient checks of the unrolled
// attention and of the whole unrolled head, training against inference (the saved head computes
// what the trainer did), a tiny fit (the head learns a sequence: tau near its maximum), resume
// bit-identical to an uninterrupted run, and `specdec train eagle` (checkpoints, --force).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { EagleHead, saveEagleHead } from "../src/drafters/eagleHeads.js";
import {
  EagleModel,
  EaglePass,
  probsSize,
  unrolledAttentionBackward,
  unrolledAttentionBackwardMm,
  unrolledAttentionForward,
  unrolledAttentionForwardMm,
  type EagleBatch,
  type RaggedShape,
} from "../src/train/eagleModel.js";
import { trainEagle, type EagleTrainConfig } from "../src/train/eagleTrainer.js";
import { SeededRng, standardNormal, uniformInt } from "../src/sampling/rng.js";
import { drafterFor } from "./support/methods.js";
import { checkDirectionalGradients, checkGrad } from "./support/trainChecks.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const CORPUS = readFileSync(sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "utf8").split("\n").filter((l) => l.trim()).slice(0, 60).join("\n");
const tmp = mkdtempSync(join(tmpdir(), "specdec-train-eagle-"));
const CORPUS_PATH = join(tmp, "corpus.txt");
writeFileSync(CORPUS_PATH, CORPUS);
let target: BuiltinTarget;

before(async () => {
  target = await BuiltinTarget.load(MODEL);
});
after(async () => {
  await target?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// ---- Gradient checks (f64 central differences: checkGrad) ------------------------------------------

const rng = new SeededRng(42);
const randn = (n: number) => Float64Array.from({ length: n }, () => standardNormal(rng));
const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, i) => s + x * b[i], 0);


const RAGGED: RaggedShape = { off: [0, 4], len: [4, 6], nHeads: 4, nKvHeads: 2, headDim: 3 };

test("gradient check: unrolled attention, every stream's queries, keys and values (ragged sequences, grouped-query)", () => {
  const N = 10, dim = 12, kvDim = 6;
  for (let stream = 0; stream < 3; stream++) {
    const q = randn(N * dim), ks = Array.from({ length: stream + 1 }, () => randn(N * kvDim)), vs = Array.from({ length: stream + 1 }, () => randn(N * kvDim)), c = randn(N * dim);
    const probs = new Float64Array(probsSize(RAGGED)), out = new Float64Array(N * dim);
    const loss = () => (unrolledAttentionForward(q, ks, vs, stream, RAGGED, probs, out), dot(c, out));
    loss();
    const dq = new Float64Array(N * dim), dks = ks.map(() => new Float64Array(N * kvDim)), dvs = vs.map(() => new Float64Array(N * kvDim));
    unrolledAttentionBackward(q, ks, vs, stream, RAGGED, probs, c, dq, dks, dvs, new Float64Array(6));
    checkGrad(`stream ${stream} dq`, q, dq, loss);
    ks.forEach((k, i) => checkGrad(`stream ${stream} dk of stream ${i}`, k, dks[i], loss));
    vs.forEach((v, i) => checkGrad(`stream ${stream} dv of stream ${i}`, v, dvs[i], loss));
    // Inactive rows (j < stream) give 0 and read nothing; a key from a later position is never read.
    for (const b of [0, 1]) for (let j = 0; j < stream; j++) assert.ok(out.slice((RAGGED.off[b] + j) * dim, (RAGGED.off[b] + j + 1) * dim).every((x) => x === 0));
    loss();
    const before = out.slice();
    ks[0][(RAGGED.off[1] + 5) * kvDim] += 3; // the last position of sequence 1, stream 0: read by no earlier query, and by no query of a later stream
    loss();
    for (let r = 0; r < N; r++) if (r !== RAGGED.off[1] + 5 || stream > 0) assert.deepEqual(out.slice(r * dim, (r + 1) * dim), before.slice(r * dim, (r + 1) * dim), `row ${r}, stream ${stream}`);
  }
});

test("the matrix-product unrolled attention computes what the scalar one does (f32)", () => {
  const s: RaggedShape = { off: [0, 9, 30], len: [9, 21, 40], nHeads: 4, nKvHeads: 2, headDim: 8 };
  const N = 70, dim = 32, kvDim = 16, r = new SeededRng(5);
  const f = (n: number) => Float32Array.from({ length: n }, () => standardNormal(r));
  for (let stream = 0; stream < 4; stream++) {
    const q = f(N * dim), ks = Array.from({ length: stream + 1 }, () => f(N * kvDim)), vs = Array.from({ length: stream + 1 }, () => f(N * kvDim)), dout = f(N * dim);
    const pa = new Float32Array(probsSize(s)), pb = new Float32Array(probsSize(s)), oa = new Float32Array(N * dim), ob = new Float32Array(N * dim);
    unrolledAttentionForward(q, ks, vs, stream, s, pa, oa);
    unrolledAttentionForwardMm(q, ks, vs, stream, s, pb, ob);
    const grads = () => ({ dq: new Float32Array(N * dim), dk: ks.map(() => new Float32Array(N * kvDim)), dv: vs.map(() => new Float32Array(N * kvDim)) });
    const A = grads(), B = grads();
    unrolledAttentionBackward(q, ks, vs, stream, s, pa, dout, A.dq, A.dk, A.dv, new Float32Array(40));
    unrolledAttentionBackwardMm(q, ks, vs, stream, s, pb, dout, B.dq, B.dk, B.dv, new Float32Array(40 * 40));
    const close = (x: Float32Array, y: Float32Array, what: string) => x.forEach((v, i) => assert.ok(Math.abs(v - y[i]) < 1e-5, `stream ${stream} ${what}[${i}]: ${v} vs ${y[i]}`));
    close(oa, ob, "out");
    close(A.dq, B.dq, "dq");
    A.dk.forEach((x, i) => close(x, B.dk[i], `dk${i}`));
    A.dv.forEach((x, i) => close(x, B.dv[i], `dv${i}`));
  }
});

/** A small random model and batch for whole-head checks. */
function smallHead(layers: number, seed: number) {
  const r = new SeededRng(seed);
  const shape = { dim: 8, vocabSize: 11, layers, heads: 2, kvHeads: 1, hidden: 12, ropeBase: 10000, normEps: 1e-5 };
  const E = Float32Array.from({ length: 11 * 8 }, () => standardNormal(r)), W = Float32Array.from({ length: 11 * 8 }, () => standardNormal(r));
  const model = new EagleModel(shape, r, E, W);
  for (const p of model.params) for (let i = 0; i < p.value.length; i++) p.value[i] = p.shape.length === 2 ? 3 * p.value[i] + 0.2 * standardNormal(r) : 1 + 0.3 * standardNormal(r);
  const rows = 12;
  const batch: EagleBatch = {
    off: Int32Array.from([0, 5]), len: Int32Array.from([5, 7]), rows,
    tokens: Int32Array.from({ length: rows }, () => uniformInt(r, 11)), feat: Float32Array.from({ length: rows * 8 }, () => standardNormal(r)), next: Float32Array.from({ length: rows * 8 }, () => standardNormal(r)),
  };
  return { model, batch, r };
}

// The whole unrolled head (f32, every loss term, three streams): for each parameter tensor the
// directional derivative along a random direction, central difference with h = 1e-3, must match
// g · d within 1.5% + 1e-3 (f32 rounding of the loss and curvature; as the draft model's check).
test("gradient check: the whole unrolled head, every parameter tensor (regression + KL, three streams, two blocks)", () => {
  const { model, batch, r } = smallHead(2, 7);
  const pass = new EaglePass(model, 3, batch.rows, 7);
  const cfg = { wReg: 1, wCls: 0.5, decay: 0.8 };
  pass.targetDistributions(batch);
  const loss = () => (pass.forward(batch), pass.loss(batch, cfg, false).total);
  for (const p of model.params) p.grad.fill(0);
  pass.forward(batch);
  pass.loss(batch, cfg, true);
  pass.backward();
  checkDirectionalGradients(model.params, loss, r, { rel: 0.015, abs: 1e-3 });
});

test("the saved head computes what the trainer did: committed entries, and drafts from its own features up to depth 3", () => {
  const { model, batch } = smallHead(1, 8);
  const path = join(tmp, "small-head.gguf");
  saveEagleHead(path, model.shape, model.tensors(), { vocabFingerprint: "x" });
  const matrix = (data: Float32Array) => ({ rows: 11, cols: 8, matMul: () => {}, readRow: (r: number, out: Float32Array, o: number) => out.set(data.subarray(r * 8, (r + 1) * 8), o) });
  const info = { hiddenSize: 8, vocabSize: 11, vocab: { model: "x", tokens: [], fingerprint: "x" }, backend: "test", contextSize: 16, tokenMatrices: () => ({ embedding: matrix(model.embedding), output: matrix(model.output) }) };
  const head = EagleHead.load(path, info);
  const pass = new EaglePass(model, 3, batch.rows, 7);
  const outs = pass.forward(batch);
  const dim = 8, o = batch.off[1], T = batch.len[1];
  for (const c of [0, 2, 4]) {
    head.truncate(0);
    const out = new Float32Array((c + 1) * dim);
    head.append(batch.feat.subarray(o * dim), batch.tokens.subarray(o), Int32Array.from({ length: c + 1 }, (_, i) => i - 1), c + 1, out);
    head.commit();
    for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i] - outs[0][o * dim + i]) < 1e-4, `committed entry ${Math.floor(i / dim)}`);
    let prev = out.slice(c * dim), parent = c;
    for (let s = 1; s < 3 && c + s < T; s++) {
      const g = new Float32Array(dim);
      head.append(prev, [batch.tokens[o + c + s]], [parent], 1, g);
      parent = head.length - 1;
      for (let i = 0; i < dim; i++) assert.ok(Math.abs(g[i] - outs[s][(o + c + s) * dim + i]) < 1e-4, `depth ${s + 1} after entry ${c}: ${g[i]} vs ${outs[s][(o + c + s) * dim + i]}`);
      prev = g;
    }
  }
});

// ---- Training -----------------------------------------------------------------------------------

const SMALL: Partial<EagleTrainConfig> = { steps: 24, batch: 4, sequences: 24, valSequences: 4, continuation: 24, unroll: 2, lr: 3e-3, evalDepth: 3, seed: 5 };

test("a tiny fit: a head trained on one story drafts it (tau near its maximum), output unchanged", async (t) => {
  // One paragraph, many times: every training sequence is a prefix of it and the target's greedy continuation.
  const story = CORPUS.split("\n")[3];
  const prompt = story.split(" ").slice(0, 6).join(" ");
  const r = await trainEagle(target, { text: Array(16).fill(story).join("\n") }, { text: story }, { steps: 100, batch: 4, sequences: 16, valSequences: 1, continuation: 40, unroll: 2, lr: 1e-2, evalDepth: 4, seed: 1 });
  const path = join(tmp, "fit.gguf");
  saveEagleHead(path, r.model.shape, r.model.tensors(), { vocabFingerprint: target.vocab.fingerprint });
  const plain = await generate(target, await drafterFor(target, "none"), { prompt, maxTokens: 40 });
  const depth = 4;
  const got = await generate(target, await drafterFor(target, "eagle", { eagle: path }), { prompt, maxTokens: 40, draftMax: depth, treeNodes: 8 });
  assert.deepEqual(got.tokens, plain.tokens);
  t.diagnostic(`held-out chain accuracy by depth ${r.eval.map((d) => d.chain.toFixed(2)).join(" ")}; tau ${got.stats.tau.toFixed(2)} (max ${depth + 1})`);
  assert.ok(got.stats.tau > 0.8 * (depth + 1), `tau ${got.stats.tau}`);
});

test("training is deterministic, and a stopped run resumed gives bit-identical parameters and moments", async () => {
  const ck = join(tmp, "eagle.ckpt");
  const straight = await trainEagle(target, { text: CORPUS }, undefined, SMALL);
  const first = await trainEagle(target, { text: CORPUS }, undefined, SMALL, { checkpoint: ck, stopAfter: 10, checkpointEvery: 4 });
  assert.equal(first.stopped, true);
  assert.equal(first.step, 10);
  const resumed = await trainEagle(target, { text: CORPUS }, undefined, SMALL, { checkpoint: ck, resume: true });
  assert.equal(resumed.resumedFrom, 10);
  assert.equal(resumed.step, SMALL.steps);
  straight.model.params.forEach((p, i) => {
    const q = resumed.model.params[i];
    assert.deepEqual(q.value, p.value, `${p.name} value`);
    assert.deepEqual(q.m, p.m, `${p.name} first moment`);
    assert.deepEqual(q.v, p.v, `${p.name} second moment`);
  });
  assert.deepEqual(resumed.eval, straight.eval);
  // Other options, or another kind of checkpoint, are refused.
  await assert.rejects(trainEagle(target, { text: CORPUS }, undefined, { ...SMALL, lr: 1e-3 }, { checkpoint: ck, resume: true }), /other data or training options/);
  await assert.rejects(trainEagle(target, { text: CORPUS }, undefined, SMALL, { checkpoint: join(tmp, "none.ckpt"), resume: true }), /does not exist/);
});

test("specdec train eagle: writes a head that --method eagle loads; --stop-after then --resume writes the same bytes; never overwrites", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, "train", "eagle", "--model", MODEL, "--data", CORPUS_PATH, "--steps", "12", "--batch", "4", "--sequences", "16", "--val-sequences", "4", "--continuation", "16", "--unroll", "2", "--quiet", ...args], { encoding: "utf8" });
  const a = join(tmp, "a.gguf"), b = join(tmp, "b.gguf"), ck = join(tmp, "cli.ckpt");
  const r1 = run("--out", a);
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stdout, /trained an EAGLE head .* depth 1: top-1/s);
  const stop = run("--out", b, "--checkpoint", ck, "--stop-after", "5");
  assert.equal(stop.status, 0, stop.stderr);
  assert.match(stop.stdout, /stopped after step 5 of 12/);
  assert.equal(existsSync(b), false);
  const resume = run("--out", b, "--checkpoint", ck, "--resume");
  assert.equal(resume.status, 0, resume.stderr);
  assert.match(resume.stdout, /resumed at step 5/);
  assert.deepEqual(readFileSync(b), readFileSync(a));
  const again = run("--out", a);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr.trim(), /^specdec: error: .*already exists.*--force/);
  assert.equal(again.stderr.trim().split("\n").length, 1);
  const g = spawnSync(process.execPath, [BIN, "generate", "--model", MODEL, "--method", "eagle", "--eagle", a, "--prompt", "Once upon a time", "--max-tokens", "16"], { encoding: "utf8" });
  assert.equal(g.status, 0, g.stderr);
  for (const [args, pattern] of [
    [["--out", join(tmp, "c.gguf"), "--unroll", "0"], /--unroll/],
    [["--out", join(tmp, "c.gguf"), "--resume"], /--resume needs --checkpoint/],
    [["--out", join(tmp, "c.gguf"), "--data", join(tmp, "missing.txt")], /cannot read corpus/],
  ] as const) {
    const r = run(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
});
