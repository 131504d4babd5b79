// The pieces the three trainers share: the seeded RNG (its state saved in checkpoints and
// restored), the corpus module (the paragraph split and the held-out split, each as the trainer
// used it before they shared it), and the errors about options (named as options in the library,
// as flags by the CLI), and how the CLI shows the trainers' progress events.
import { test } from "node:test";
import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { progressHooks, type ProgressDisplay } from "../src/cli/progress.js";
import { TRAIN_FLAGS, addTrainCommand } from "../src/cli/trainCommand.js";
import { SeededRng, shuffleInPlace, standardNormal, uniformInt } from "../src/sampling/rng.js";
import { checkCheckpointHooks, openResume, saveCheckpoint } from "../src/train/checkpoint.js";
import { DRAFT_HOLDOUT, MODEL_HOLDOUT, holdOut, medusaHoldout, paragraphs, readCorpus, trainingTexts } from "../src/train/corpus.js";
import { checkBatchSharding } from "../src/train/dataParallel.js";
import { TrainOptionError } from "../src/train/optionError.js";

// ---- the RNG -----------------------------------------------------------------------------

/** SeededRng.next as it was written before it had a state to save (the reference stream). */
function referenceStream(seed: number, n: number): number[] {
  let state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let z = (state = (state + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    let w = (state = (state + 0x9e3779b9) >>> 0);
    w = Math.imul(w ^ (w >>> 16), 0x85ebca6b);
    w = Math.imul(w ^ (w >>> 13), 0xc2b2ae35);
    w = (w ^ (w >>> 16)) >>> 0;
    out.push((z * 2 ** 21 + (w >>> 11)) / 2 ** 53);
  }
  return out;
}

const draws = (rng: SeededRng, n: number) => Array.from({ length: n }, () => rng.next());

test("SeededRng: the same stream as before; its state round-trips (set(get()) continues the same stream)", () => {
  for (const seed of [0, 1, 42, 0x5eed, 2 ** 32 - 1, -7]) assert.deepEqual(draws(new SeededRng(seed), 50), referenceStream(seed, 50), `seed ${seed}`);

  const a = new SeededRng(9), twin = new SeededRng(9);
  draws(a, 17);
  draws(twin, 17);
  const saved = a.state;
  assert.ok(Number.isInteger(saved) && saved >= 0 && saved <= 0xffffffff);
  a.state = a.state; // set(get()) on the same generator: nothing changes
  assert.deepEqual(draws(a, 40), draws(twin, 40));
  // Another generator given the saved state continues from there (what a resumed run does).
  const resumed = new SeededRng(12345);
  resumed.state = saved;
  const again = new SeededRng(9);
  draws(again, 17);
  assert.deepEqual(draws(resumed, 40), draws(again, 40));
  // Stepping on changes the state; a state is a u32.
  assert.notEqual(a.state, saved);
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) assert.throws(() => (new SeededRng(0).state = bad), RangeError);
});

test("draws over an Rng: integers in range, a shuffle is a permutation, normals have mean 0 and variance 1", () => {
  const rng = new SeededRng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const k = uniformInt(rng, 7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7, `${k}`);
    seen.add(k);
  }
  assert.equal(seen.size, 7);
  const a = Int32Array.from({ length: 50 }, (_, i) => i);
  shuffleInPlace(rng, a);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.notDeepEqual([...a], Array.from({ length: 50 }, (_, i) => i));
  // 20,000 draws: the standard error of the mean is 0.007, of the variance 0.01.
  let sum = 0, sq = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const x = standardNormal(rng);
    sum += x;
    sq += x * x;
  }
  const mean = sum / n, variance = sq / n - mean * mean;
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05, `mean ${mean}, variance ${variance}`);
});

// ---- the corpus --------------------------------------------------------------------------
// The splits as each trainer wrote them before they shared corpus.ts: the reference.
const before = {
  draftParagraphs: (t: string) => t.split("\n").map((s) => s.trim()).filter((s) => s.length > 0),
  medusaParagraphs: (t: string) => t.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0),
  modelParagraphs: (t: string) => {
    const out: string[] = [];
    for (const line of t.split("\n")) {
      const p = line.trim();
      if (p) out.push(p);
    }
    return out;
  },
  // `train draft` (the CLI): the last 5% held out, at least 1 paragraph kept; fewer than 2 paragraphs: an error.
  draftTexts: (t: string) => {
    const paras = before.medusaParagraphs(t);
    if (paras.length < 2) return "error";
    const cut = Math.max(1, Math.floor(paras.length * 0.95));
    return { train: paras.slice(0, cut).join("\n"), val: paras.slice(cut).join("\n") };
  },
  // `train model` (the CLI): the last 5% held out from 20 paragraphs on; else all of the text and none.
  modelTexts: (t: string) => {
    const paras = before.medusaParagraphs(t);
    if (paras.length < 20) return { train: t, val: "" };
    const cut = Math.floor(paras.length * 0.95);
    return { train: paras.slice(0, cut).join("\n"), val: paras.slice(cut).join("\n") };
  },
  // trainMedusa: round(n · holdout), at least 1, held out; fewer than 2 paragraphs: an error.
  medusaSplit: (paras: string[], holdout: number) => {
    const nVal = Math.max(1, Math.round(paras.length * holdout));
    if (paras.length < 2) return "error";
    return { train: paras.slice(0, paras.length - nVal), val: paras.slice(paras.length - nVal) };
  },
};

/** A text of n paragraphs with what real files have: CRLF, blank and whitespace-only lines, tabs, a lone CR, NBSP and BOM. */
function messyText(n: number, rng: SeededRng): string {
  const lines: string[] = [];
  const pads = ["", " ", "\t", "  \t", "\u00a0", "\ufeff", "\r"];
  for (let i = 0; i < n; i++) {
    if (uniformInt(rng, 4) === 0) lines.push(pads[uniformInt(rng, pads.length)]);
    const inner = uniformInt(rng, 5) === 0 ? "a\rb" : `Paragraph ${i}: Tom  saw\ta dog.`;
    lines.push(pads[uniformInt(rng, pads.length)] + inner + pads[uniformInt(rng, pads.length)]);
  }
  const eol = uniformInt(rng, 2) === 0 ? "\n" : "\r\n";
  return lines.join(eol) + (uniformInt(rng, 2) === 0 ? eol : "");
}

test("corpus: the paragraph split is each trainer's split before, on messy text", () => {
  const rng = new SeededRng(1);
  for (let n = 0; n < 60; n++) {
    const text = messyText(n, rng);
    const p = paragraphs(text);
    assert.equal(p.length, n, JSON.stringify(text));
    assert.deepEqual(p, before.draftParagraphs(text));
    assert.deepEqual(p, before.medusaParagraphs(text));
    assert.deepEqual(p, before.modelParagraphs(text));
  }
});

test("corpus: the held-out split is each trainer's split before (train draft, train model, train medusa at several fractions)", () => {
  const rng = new SeededRng(2);
  for (let n = 0; n <= 130; n++) {
    const text = messyText(n, rng);
    const draft = before.draftTexts(text);
    if (draft === "error") assert.throws(() => trainingTexts(text, undefined, DRAFT_HOLDOUT), TrainOptionError);
    else assert.deepEqual(trainingTexts(text, undefined, DRAFT_HOLDOUT), draft, `draft, ${n} paragraphs`);
    assert.deepEqual(trainingTexts(text, undefined, MODEL_HOLDOUT), before.modelTexts(text), `model, ${n} paragraphs`);
    // With held-out text given: all of the training text, as it is.
    assert.deepEqual(trainingTexts(text, "held out", DRAFT_HOLDOUT), { train: text, val: "held out" });
    assert.deepEqual(trainingTexts(text, "held out", MODEL_HOLDOUT), { train: text, val: "held out" });
    const paras = paragraphs(text);
    for (const fraction of [0.05, 0.1, 0.2, 1 / 3, 0.5, 0.9]) {
      const old = before.medusaSplit(paras, fraction);
      if (old === "error") assert.throws(() => holdOut(paras, medusaHoldout(fraction)), TrainOptionError);
      else assert.deepEqual(holdOut(paras, medusaHoldout(fraction)), old, `medusa, ${n} paragraphs, holdout ${fraction}`);
    }
  }
});

test("corpus: a corpus file is read and checked (empty, whitespace only, binary, not UTF-8, missing, a directory) with one-line errors", () => {
  const dir = mkdtempSync(join(tmpdir(), "specdec-corpus-"));
  try {
    const file = (name: string, data: string | Buffer) => (writeFileSync(join(dir, name), data), join(dir, name));
    const ok = readCorpus(file("ok.txt", "One.\r\nTwo.\n"));
    assert.equal(ok.text, "One.\r\nTwo.\n");
    assert.equal(ok.hash, createHash("sha256").update(Buffer.from("One.\r\nTwo.\n")).digest("hex"), "the hash of the file's bytes");
    assert.throws(() => readCorpus(file("empty.txt", "")), /corpus .* is empty/);
    assert.throws(() => readCorpus(file("blank.txt", " \n\t\n"), "validation text"), /validation text .* has no text/);
    assert.throws(() => readCorpus(file("nul.bin", Buffer.from([0x41, 0x00, 0x42]))), /looks binary/);
    assert.throws(() => readCorpus(file("latin1.txt", Buffer.from("cr\xe8me\n", "latin1"))), /not valid UTF-8/);
    assert.throws(() => readCorpus(join(dir, "missing.txt")), /cannot read corpus .*ENOENT/);
    assert.throws(() => readCorpus(dir), /is a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- errors about options ----------------------------------------------------------------

test("option errors: the library names options, the CLI has a flag for each option they name", () => {
  const dir = mkdtempSync(join(tmpdir(), "specdec-options-"));
  try {
    const ck = join(dir, "ck.bin");
    saveCheckpoint(ck, { kind: "llama-model", configHash: "x" }, new Map());
    const errors: TrainOptionError[] = [];
    const collect = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof TrainOptionError, String(e));
        errors.push(e);
        return;
      }
      assert.fail("no error");
    };
    collect(() => checkCheckpointHooks({ resume: true }));
    collect(() => openResume(join(dir, "missing.bin"), "llama-model", "x"));
    collect(() => openResume(ck, "llama-model", "another hash"));
    collect(() => checkBatchSharding(6, 4));
    collect(() => holdOut(["one paragraph"], DRAFT_HOLDOUT));
    assert.deepEqual(
      errors.map((e) => e.message),
      [
        "resume needs checkpoint (the file to continue from)",
        `resume: checkpoint ${join(dir, "missing.bin")} does not exist`,
        `${ck}: checkpoint made with other data or training options: resume with the same ones, or start again without resume`,
        "batch 6 is not divisible by threads 4",
        "the corpus has 1 paragraph: too few to hold some out (give held-out text with val)",
      ],
    );
    // Said with flags: each named option is in the CLI's table, and each flag there is a flag of a train command.
    assert.equal(errors[0].describe((o) => TRAIN_FLAGS[o]), "--resume needs --checkpoint (the file to continue from)");
    assert.equal(errors[3].describe((o) => TRAIN_FLAGS[o]), "--batch 6 is not divisible by --threads 4");
    for (const e of errors) for (const o of e.options) assert.ok(o in TRAIN_FLAGS, `no flag for option ${o}`);
    const cli = new Command();
    addTrainCommand(cli);
    const flags = new Set(cli.commands.flatMap((c) => c.commands.flatMap((sub) => sub.options.map((opt) => opt.long))));
    for (const [option, flag] of Object.entries(TRAIN_FLAGS)) assert.ok(flags.has(flag), `${option}: ${flag} is not a flag of specdec train`);
    // Checkpoint hooks that make sense pass.
    checkCheckpointHooks({});
    checkCheckpointHooks({ checkpoint: ck });
    checkCheckpointHooks({ checkpoint: ck, resume: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- progress --------------------------------------------------------------------------

test("progress: the CLI shows the trainers' events: loss and accuracy smoothed over steps, data phases labelled, messages as lines", () => {
  const shown: Parameters<ProgressDisplay["update"]>[0][] = [];
  const lines: string[] = [];
  const hooks = progressHooks({ update: (p) => shown.push(p), log: (l) => lines.push(l), stop: () => {} }, 100);
  hooks.onData("3 windows");
  hooks.onPrepare({ what: "windows", done: 2, total: 3 });
  hooks.onPrepare({ what: "merges", done: 5, total: 9 });
  const losses = [4, 2, 3], accs = [0, 1, 0.5];
  losses.forEach((loss, i) => hooks.onStep({ step: i + 6, steps: 10, lr: 1e-3, gradNorm: 1, loss, accuracy: accs[i], ms: 5 }));
  assert.deepEqual(lines, ["3 windows"]);
  assert.deepEqual(
    shown.slice(0, 2).map((p) => [p.phase, p.label, p.unit, p.done, p.total]),
    [["data", "windows", "windows", 2, 3], ["data", "tokenizer", "merges", 5, 9]],
  );
  const steps = shown.slice(2);
  assert.deepEqual(steps.map((p) => [p.phase, p.done, p.total, p.lr]), [["train", 6, 10, 1e-3], ["train", 7, 10, 1e-3], ["train", 8, 10, 1e-3]]);
  // Smoothing: the first step as it is, then 0.95 of the previous and 0.05 of the step's.
  assert.equal(steps[0].loss, 4);
  assert.equal(steps[1].loss, 0.95 * 4 + 0.05 * 2);
  assert.equal(steps[2].loss, 0.95 * (0.95 * 4 + 0.05 * 2) + 0.05 * 3);
  assert.equal(steps[2].accuracy, 0.95 * (0.95 * 0 + 0.05 * 1) + 0.05 * 0.5);
  // Rates and time left count from the first step shown (a resumed run: step 6): positive and finite.
  for (const p of steps) assert.ok(p.rate! > 0 && Number.isFinite(p.rate!) && p.eta! >= 0 && Number.isFinite(p.eta!), JSON.stringify(p));
});
