import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { MedusaHeads } from "../src/drafters/medusaHeads.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { linearBackward, linearForward, residualBackward, residualForward, softmaxCrossEntropy, klDivergence } from "../src/train/layers.js";
import { AdamW, clipGradNorm, learningRate, makeParam } from "../src/train/optim.js";
import { loadCheckpoint, saveCheckpoint } from "../src/train/checkpoint.js";
import { SeededRng, standardNormal } from "../src/sampling/rng.js";
import { trainMedusa, type MedusaTrainConfig } from "../src/train/medusaTrainer.js";
import type { TrainStep } from "../src/train/progress.js";
import { SpecdecError } from "../src/errors.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const OTHER_MODEL = sharedFile("models", "llama-2-tiny-random.gguf");
const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const tmp = mkdtempSync(join(tmpdir(), "specdec-train-"));
// A small fixed text: the first 40 paragraphs of the training corpus.
const SMALL = readFileSync(sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "utf8").split("\n").filter((l) => l.trim()).slice(0, 40).join("\n");
const SMALL_PATH = join(tmp, "small.txt");
writeFileSync(SMALL_PATH, SMALL);

let target: BuiltinTarget;
before(async () => {
  target = await BuiltinTarget.load(MODEL);
});
after(async () => target?.dispose());

// ---- Finite-difference gradient checks -------------------------------------------------------
// Central differences in float32 with step EPS; an analytic gradient g and a numeric one n agree
// when |g − n| ≤ ABS_TOL + REL_TOL · |g|. Losses are O(1), so float32 rounding of the loss
// (~1e-7) divided by 2·EPS gives ~5e-5 of noise, well under the tolerance.
const EPS = 1e-3, ABS_TOL = 2e-3, REL_TOL = 2e-2;

function randomArray(rng: SeededRng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * standardNormal(rng);
  return a;
}

/** Compare grad with central differences of loss() over every element of x. */
function checkGradient(name: string, x: Float32Array, grad: Float32Array, loss: () => number): void {
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + EPS;
    const up = loss();
    x[i] = old - EPS;
    const down = loss();
    x[i] = old;
    const numeric = (up - down) / (2 * EPS);
    assert.ok(Math.abs(grad[i] - numeric) <= ABS_TOL + REL_TOL * Math.abs(grad[i]), `${name}[${i}]: analytic ${grad[i]}, numeric ${numeric}`);
  }
}

test("gradient check: linear layer (odd sizes, with bias)", () => {
  const rng = new SeededRng(1);
  const B = 3, nIn = 5, nOut = 7;
  const x = randomArray(rng, B * nIn), W = randomArray(rng, nOut * nIn, 0.5), b = randomArray(rng, nOut), R = randomArray(rng, B * nOut);
  const y = new Float32Array(B * nOut);
  // loss = Σ y ⊙ R, so dL/dy = R.
  const loss = () => {
    linearForward(x, W, b, B, nIn, nOut, y);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * R[i];
    return s;
  };
  const dW = new Float32Array(W.length), db = new Float32Array(b.length), dx = new Float32Array(x.length);
  loss();
  linearBackward(x, W, R, B, nIn, nOut, dW, db, dx);
  checkGradient("dW", W, dW, loss);
  checkGradient("db", b, db, loss);
  checkGradient("dx", x, dx, loss);
});

test("gradient check: SiLU residual block h + SiLU(W h + b)", () => {
  const rng = new SeededRng(2);
  const B = 4, dim = 6;
  const h = randomArray(rng, B * dim), W = randomArray(rng, dim * dim, 0.7), b = randomArray(rng, dim, 0.5), R = randomArray(rng, B * dim);
  const z = new Float32Array(B * dim), y = new Float32Array(B * dim), dz = new Float32Array(B * dim);
  const loss = () => {
    residualForward(h, W, b, B, dim, z, y);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * R[i];
    return s;
  };
  const dW = new Float32Array(W.length), db = new Float32Array(b.length), dh = new Float32Array(h.length);
  loss();
  residualBackward(h, W, z, R, B, dim, dW, db, dh, dz);
  checkGradient("dW", W, dW, loss);
  checkGradient("db", b, db, loss);
  checkGradient("dh", h, dh, loss);
});

test("gradient check: softmax cross-entropy (mean over the batch, a skipped label)", () => {
  const rng = new SeededRng(3);
  const B = 4, V = 9;
  const logits = randomArray(rng, B * V, 2);
  const labels = new Int32Array([3, 0, -1, 8]);
  const d = new Float32Array(B * V);
  const value = softmaxCrossEntropy(logits, labels, B, V, d);
  // Against a direct computation.
  let ref = 0;
  for (const r of [0, 1, 3]) {
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v]);
    ref += Math.log(z) - logits[r * V + labels[r]];
  }
  assert.ok(Math.abs(value - ref / 3) < 1e-5, `${value} vs ${ref / 3}`);
  checkGradient("dlogits", logits, d, () => softmaxCrossEntropy(logits, labels, B, V, null));
  for (let v = 0; v < V; v++) assert.equal(d[2 * V + v], 0);
});

test("gradient check: KL(p_target ‖ p_model)", () => {
  const rng = new SeededRng(4);
  const B = 3, V = 8;
  const logits = randomArray(rng, B * V, 2), p = new Float32Array(B * V);
  for (let r = 0; r < B; r++) {
    let s = 0;
    for (let v = 0; v < V; v++) s += p[r * V + v] = v === 5 && r === 1 ? 0 : Math.exp(standardNormal(rng)); // one zero probability
    for (let v = 0; v < V; v++) p[r * V + v] /= s;
  }
  const d = new Float32Array(B * V);
  const value = klDivergence(p, logits, B, V, d);
  assert.ok(value > 0);
  checkGradient("dlogits", logits, d, () => klDivergence(p, logits, B, V, null));
  // KL of a distribution with itself is 0 (and so is its gradient).
  const same = new Float32Array(B * V);
  for (let r = 0; r < B; r++) for (let v = 0; v < V; v++) same[r * V + v] = Math.log(p[r * V + v] + 1e-30);
  assert.ok(klDivergence(p, same, B, V, d) < 1e-5);
});

test("AdamW, schedule and clipping behave as specified", () => {
  // Warm-up then cosine to 10 %.
  assert.equal(learningRate(0, 100, 1, 10), 0.1);
  assert.equal(learningRate(9, 100, 1, 10), 1);
  assert.ok(Math.abs(learningRate(99, 100, 1, 10) - 0.1) < 1e-12);
  assert.ok(learningRate(50, 100, 1, 10) < 1 && learningRate(50, 100, 1, 10) > 0.1);
  // Clipping to a global norm.
  const a = makeParam("a", [2], true, new Float32Array([3, 0])), b = makeParam("b", [1], false, new Float32Array([0]));
  a.grad.set([3, 0]);
  b.grad.set([4]);
  assert.ok(Math.abs(clipGradNorm([a, b], 1) - 5) < 1e-6);
  assert.ok(Math.abs(Math.hypot(a.grad[0], a.grad[1], b.grad[0]) - 1) < 1e-5);
  // Decoupled weight decay: a zero gradient still shrinks decayed weights, not the others.
  a.grad.fill(0);
  b.grad.fill(0);
  b.value[0] = 2;
  new AdamW([a, b], { weightDecay: 0.5 }).step(1, 0.1);
  assert.ok(Math.abs(a.value[0] - 3 * 0.95) < 1e-6);
  assert.equal(b.value[0], 2);
  // Minimises a quadratic.
  const w = makeParam("w", [3], true, new Float32Array([1, -2, 3]));
  const opt = new AdamW([w], { weightDecay: 0 });
  for (let t = 1; t <= 500; t++) {
    for (let i = 0; i < 3; i++) w.grad[i] = 2 * w.value[i];
    opt.step(t, 0.05);
  }
  for (const v of w.value) assert.ok(Math.abs(v) < 0.05, `${w.value}`);
});

test("checkpoint files round-trip and are written atomically", () => {
  const path = join(tmp, "rt.ckpt");
  const f = new Float32Array([1.5, -2, Math.PI]), i = new Int32Array([7, -1]);
  saveCheckpoint(path, { step: 3, note: "x" }, new Map<string, Float32Array | Int32Array>([["f", f], ["i", i]]));
  const back = loadCheckpoint(path);
  assert.deepEqual(back.meta, { step: 3, note: "x" });
  assert.deepEqual(back.arrays.get("f"), f);
  assert.deepEqual(back.arrays.get("i"), i);
  assert.ok(!existsSync(`${path}.tmp-${process.pid}`));
  writeFileSync(join(tmp, "junk.ckpt"), "not a checkpoint");
  assert.throws(() => loadCheckpoint(join(tmp, "junk.ckpt")), SpecdecError);
});

// ---- The Medusa trainer ----------------------------------------------------------------------
const TINY: Partial<MedusaTrainConfig> = { heads: 2, batch: 16, lr: 3e-3, seed: 7, maxExamples: 600, valExamples: 150, continuation: 40, warmup: 5 };

test("end to end: the loss falls on a small fixed text, and the heads load", async () => {
  // The training loss smoothed over steps (0.95 / 0.05), taken every 10 steps.
  const losses: number[] = [];
  let smoothed = NaN;
  const onStep = (s: TrainStep) => {
    smoothed = Number.isNaN(smoothed) ? s.loss : 0.95 * smoothed + 0.05 * s.loss;
    if (s.step % 10 === 0) losses.push(smoothed);
  };
  const r = await trainMedusa(target, { text: SMALL }, undefined, { ...TINY, steps: 150 }, { onStep });
  assert.equal(r.step, 150);
  assert.ok(losses.length >= 10);
  const first = losses[0], last = losses[losses.length - 1];
  assert.ok(last < 0.8 * first, `training loss went ${first} → ${last}`);
  assert.equal(r.eval.length, 2);
  for (const e of r.eval) assert.ok(e.top1 >= 0 && e.top1 <= e.top5 && e.top5 <= 1 && Number.isFinite(e.loss));
  assert.ok(r.eval[0].top5 > 0.2, `held-out top-5 of head 0: ${r.eval[0].top5}`);
});

test("resume: stop after N steps, continue → bit-identical parameters to an uninterrupted run", async () => {
  const cfg = { ...TINY, steps: 40, projection: "shared" as const, maxExamples: 300, valExamples: 20 };
  const full = await trainMedusa(target, { text: SMALL }, undefined, cfg);
  const ckpt = join(tmp, "resume.ckpt");
  const part = await trainMedusa(target, { text: SMALL }, undefined, cfg, { checkpoint: ckpt, checkpointEvery: 5, stopAfter: 17 });
  assert.equal(part.stopped, true);
  assert.equal(part.step, 17);
  const rest = await trainMedusa(target, { text: SMALL }, undefined, cfg, { checkpoint: ckpt, resume: true });
  assert.equal(rest.resumedFrom, 17);
  assert.equal(rest.step, 40);
  assert.equal(rest.params.length, full.params.length);
  for (let i = 0; i < full.params.length; i++)
    for (const part of ["value", "m", "v"] as const)
      assert.ok(Buffer.from(rest.params[i][part].buffer).equals(Buffer.from(full.params[i][part].buffer)), `${full.params[i].name}.${part} differs`);
  // Other options than the checkpoint's are refused.
  await assert.rejects(trainMedusa(target, { text: SMALL }, undefined, { ...cfg, lr: 1e-3 }, { checkpoint: ckpt, resume: true }), /other data or training options/);
});

// ---- The CLI ---------------------------------------------------------------------------------
function cli(...args: string[]) {
  return spawnSync(process.execPath, [BIN, "train", "medusa", "--model", MODEL, ...args], { encoding: "utf8", timeout: 60_000 });
}

function assertOneLineError(r: ReturnType<typeof cli>, pattern: RegExp): void {
  assert.notEqual(r.status, 0, `exit status 0: ${r.stdout}`);
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `stderr should be one line:\n${r.stderr}`);
  assert.match(lines[0], /^specdec: error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

test("CLI: bad corpora, an existing --out and a checkpoint of another model are one-line errors", () => {
  const out = join(tmp, "bad-out.gguf");
  const empty = join(tmp, "empty.txt"), blank = join(tmp, "blank.txt"), binary = join(tmp, "binary.bin"), latin1 = join(tmp, "latin1.txt");
  writeFileSync(empty, "");
  writeFileSync(blank, "\n  \n\t\n");
  writeFileSync(binary, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x3e, 0x00]));
  writeFileSync(latin1, Buffer.from("Tom ate a cr\xe8me br\xfbl\xe9e.\n", "latin1"));
  assertOneLineError(cli("--data", empty, "--out", out), /is empty/);
  assertOneLineError(cli("--data", blank, "--out", out), /no text/);
  assertOneLineError(cli("--data", binary, "--out", out), /binary/);
  assertOneLineError(cli("--data", latin1, "--out", out), /not valid UTF-8/);
  assertOneLineError(cli("--data", join(tmp, "missing.txt"), "--out", out), /cannot read corpus/);
  assertOneLineError(cli("--data", SMALL_PATH, "--val", empty, "--out", out), /validation text .* is empty/);
  // Never overwrite.
  const existing = join(tmp, "existing.gguf");
  writeFileSync(existing, "precious");
  assertOneLineError(cli("--data", SMALL_PATH, "--out", existing), /already exists/);
  assert.equal(readFileSync(existing, "utf8"), "precious");
  // A checkpoint made for stories260K, resumed with another model.
  const ckpt = join(tmp, "cli.ckpt");
  const small = ["--data", SMALL_PATH, "--heads", "2", "--batch", "8", "--examples", "200", "--val-examples", "20", "--continuation", "20", "--quiet"];
  const first = cli(...small, "--steps", "12", "--out", join(tmp, "cli-heads.gguf"), "--checkpoint", ckpt, "--stop-after", "5");
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /stopped after step 5 of 12; checkpoint saved/);
  const other = spawnSync(process.execPath, [BIN, "train", "medusa", "--model", OTHER_MODEL, ...small, "--steps", "12", "--out", join(tmp, "o.gguf"), "--checkpoint", ckpt, "--resume"], { encoding: "utf8", timeout: 60_000 });
  assertOneLineError(other, /checkpoint made for another model/);
  assertOneLineError(cli(...small, "--steps", "12", "--out", join(tmp, "o.gguf"), "--resume"), /--resume needs --checkpoint/);
  // The interrupted run resumes from its checkpoint and writes heads generate can use.
  const rest = cli(...small, "--steps", "12", "--out", join(tmp, "cli-heads.gguf"), "--checkpoint", ckpt, "--resume");
  assert.equal(rest.status, 0, rest.stderr);
  assert.equal(rest.stderr, "", "quiet when not a TTY");
  assert.match(rest.stdout, /resumed at step 5/);
  assert.match(rest.stdout, /head 1 \(token \+3\): top-1 [\d.]+%  top-5 [\d.]+%/);
  const heads = MedusaHeads.load(join(tmp, "cli-heads.gguf"), target);
  assert.equal(heads.count, 2);
  const gen = spawnSync(process.execPath, [BIN, "generate", "--backend", "builtin", "--model", MODEL, "--method", "medusa", "--medusa", join(tmp, "cli-heads.gguf"), "--prompt", "Tom had a ball.", "--max-tokens", "16", "--json"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(gen.status, 0, gen.stderr);
  assert.equal(JSON.parse(gen.stdout).method, "medusa");
  // Heads made for stories260K refuse another model.
  const wrong = spawnSync(process.execPath, [BIN, "generate", "--backend", "builtin", "--model", OTHER_MODEL, "--method", "medusa", "--medusa", join(tmp, "cli-heads.gguf"), "--prompt", "hi", "--max-tokens", "4"], { encoding: "utf8", timeout: 60_000 });
  assertOneLineError(wrong, /another model|hidden size/);
});
