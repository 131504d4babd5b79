import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { chainChoices } from "../src/drafters/draftTree.js";
import { drafterFor } from "./support/methods.js";
import { saveMedusaHeads } from "../src/drafters/medusaHeads.js";
import { fitMedusaHeads } from "./support/fitHeads.js";
import { TypicalAcceptanceVerifier } from "../src/verifiers/typicalAcceptance.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import type { Token } from "../src/types.js";
import { argmax } from "../src/sampling/shapeDistribution.js";

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
  const plain = await generate(target, await drafterFor(target, "none"), { prompt: PROMPT, maxTokens: LENGTH });
  reference = plain.tokens;
  // Heads with known weights: projections fitted so head k maps the hidden state at each
  // position of the reference to the token k + 2 positions later.
  const prompt = target.tokenize(PROMPT);
  const { heads, accuracy } = fitMedusaHeads(target, [{ seq: [...prompt, ...reference], from: prompt.length - 1 }], K);
  assert.deepEqual(accuracy, new Array(K).fill(1), `the fitted heads must know the sequence: ${accuracy.join(", ")}`);
  headsPath = join(tmp, "heads.gguf");
  saveMedusaHeads(headsPath, heads, { hiddenSize: target.hiddenSize, vocabSize: target.vocabSize, vocabFingerprint: target.vocab.fingerprint, name: "stories260K" });
});
after(async () => target?.dispose());

test("Medusa heads that know the sequence reach tau close to K + 1, output unchanged", async (t) => {
  const drafter = await drafterFor(target, "medusa", { medusa: headsPath, tree: chainChoices(K) });
  const r = await generate(target, drafter, { prompt: PROMPT, maxTokens: LENGTH, draftMax: K });
  assert.deepEqual(r.tokens, reference);
  t.diagnostic(`medusa chain of ${K}: tau ${r.stats.tau.toFixed(3)}`);
  assert.ok(r.stats.tau > 0.85 * (K + 1), `tau ${r.stats.tau} for K = ${K}`);
});

test("Medusa with the default tree shape and with sampling stays exact / reproducible", async (t) => {
  const drafter = await drafterFor(target, "medusa", { medusa: headsPath });
  const greedy = await generate(target, drafter, { prompt: PROMPT, maxTokens: LENGTH, draftMax: K });
  assert.deepEqual(greedy.tokens, reference);
  t.diagnostic(`medusa default tree: tau ${greedy.stats.tau.toFixed(3)}`);
  assert.ok(greedy.stats.tau > 2, `tau ${greedy.stats.tau}`);
  const a = await generate(target, drafter, { prompt: PROMPT, maxTokens: 40, draftMax: K, sampling: { temperature: 0.7, seed: 3 } });
  const b = await generate(target, drafter, { prompt: PROMPT, maxTokens: 40, draftMax: K, sampling: { temperature: 0.7, seed: 3 } });
  assert.deepEqual(a.tokens, b.tokens);
});

test("Medusa heads made for another model are clear errors; Medusa runs on both backends", async () => {
  const other = join(tmp, "other.gguf");
  const dim = target.hiddenSize;
  saveMedusaHeads(other, [{ res: new Float32Array(dim * dim), bias: new Float32Array(dim) }], { hiddenSize: dim, vocabSize: target.vocabSize, vocabFingerprint: "0".repeat(64) });
  await assert.rejects(drafterFor(target, "medusa", { medusa: other }), /another vocabulary/);
  const wide = join(tmp, "wide.gguf");
  saveMedusaHeads(wide, [{ res: new Float32Array(4 * dim * dim), bias: new Float32Array(2 * dim) }], { hiddenSize: 2 * dim, vocabSize: target.vocabSize, vocabFingerprint: target.vocab.fingerprint });
  await assert.rejects(drafterFor(target, "medusa", { medusa: wide }), /another model/);
  await assert.rejects(drafterFor(target, "medusa", { medusa: MODEL }), /not a Medusa heads file/);
  assert.throws(() => saveMedusaHeads(other, [], { hiddenSize: dim, vocabSize: 1, vocabFingerprint: "" }), /exist/);

  const cli = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--model", MODEL, "--prompt", "hi", ...args], { encoding: "utf8" });
  for (const [args, pattern] of [
    [["--backend", "builtin", "--method", "medusa", "--medusa", other], /another vocabulary/],
    [["--backend", "builtin", "--method", "medusa", "--medusa", headsPath, "--tree", "0;0,0;1,1"], /no parent/],
    [["--backend", "builtin", "--method", "medusa"], /needs its heads/],
  ] as const) {
    const r = cli(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  for (const backend of ["builtin", "llama.cpp"]) {
    const ok = cli("--backend", backend, "--method", "medusa", "--medusa", headsPath, "--tree", "0;1;0,0;0,0,0", "--max-tokens", "20");
    assert.equal(ok.status, 0, ok.stderr);
  }
});

test("Medusa on other prompts (heads that do not know them): 128 tokens each, exactly plain greedy", async () => {
  const drafter = await drafterFor(target, "medusa", { medusa: headsPath });
  const none = await drafterFor(target, "none");
  for (const prompt of ["Once upon a time", "Lily and Ben went to the park. They saw a big dog.", "The sun was hot. Sam wanted ice cream."]) {
    const want = await generate(target, none, { prompt, maxTokens: 128 });
    const got = await generate(target, drafter, { prompt, maxTokens: 128, draftMax: K });
    assert.deepEqual(got.tokens, want.tokens, prompt);
  }
});

test("typical acceptance (lossy) keeps plausible guesses by threshold and ends on the argmax", () => {
  const v = new TypicalAcceptanceVerifier({ epsilon: 0.09, alpha: 0.3 });
  assert.match(v.name, /lossy/);
  const dist = (...p: number[]) => Float32Array.from(p);
  // Root: token 1 is the argmax (0.5) but token 2 (0.3) is above the threshold too.
  const pRoot = dist(0.05, 0.5, 0.3, 0.15);
  const tree = { tokens: [2, 3, 0] as Token[], parents: [-1, 0, -1] };
  const after = [dist(0.02, 0.02, 0.01, 0.95), dist(0.7, 0.1, 0.1, 0.1), dist(0.25, 0.25, 0.25, 0.25)];
  const out = (ps: Float32Array[]) => ({ argmax: ps.map((d) => argmax(d)), p: ps });
  const r = v.verify(tree, out([pRoot, ...after]));
  // 2 accepted (0.3 > min(0.09, 0.3·e^-H)), then 3 (0.95); after 3 the argmax is token 0.
  assert.deepEqual(r.path, [0, 1]);
  assert.equal(r.token, 0);
  // Token 0 at the root (0.05) is below the threshold: nothing accepted, the argmax follows.
  const none = v.verify({ tokens: [0] as Token[], parents: [-1] }, out([pRoot, after[2]]));
  assert.deepEqual(none.path, []);
  assert.equal(none.token, 1);
  assert.equal(none.kind, "recovered");
});

test("--acceptance typical runs on a chain method too, and the summary says it is lossy", () => {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--model", MODEL, "--prompt", "hi", "--max-tokens", "8", "--acceptance", "typical"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /LOSSY verification \(typical-acceptance/);
  const j = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--model", MODEL, "--prompt", "hi", "--max-tokens", "8", "--acceptance", "typical", "--json"], { encoding: "utf8" });
  assert.match(JSON.parse(j.stdout).lossy, /lossy/);
});
