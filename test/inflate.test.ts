// specdec inflate: the heavy twin computes what the original computes when quantized the same
// way (zero-valued feed-forward units), on both backends; it says what it is; bad input is refused.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "../src/decode/speculativeDecode.js";
import { NoDrafter } from "../src/drafters/none.js";
import { openGguf, metaNumber, metaString } from "../src/gguf/reader.js";
import { kv, writeGguf } from "../src/gguf/writer.js";
import { inflateModel, parseParamCount } from "../src/inflate.js";
import { loadTarget, type Backend } from "../src/targets/loadTarget.js";
import { PROJECT_ROOT } from "./support/sharedData.js";
import { defaultModels } from "../src/defaultModels.js";

delete process.env.SPECDEC_MODELS;
const SOURCE = defaultModels().target; // llama, dim 128, FFN 384, byte-level BPE
const tmp = mkdtempSync(join(tmpdir(), "specdec-inflate-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 120_000 });

test("the twin's greedy tokens equal the unpadded model's in the same type, on both backends", async () => {
  const original = join(tmp, "original-q8_0.gguf"), twin = join(tmp, "twin-q8_0.gguf");
  const o = inflateModel(SOURCE, original, { ffn: 384, type: "q8_0" });
  const t = inflateModel(SOURCE, twin, { ffn: 384 * 8, type: "q8_0" });
  assert.equal(o.ffnTo, 384);
  assert.equal(t.ffnTo, 3072);
  assert.ok(t.params > 5 * o.params, `${t.params} vs ${o.params} parameters`);
  for (const backend of ["builtin", "llama.cpp"] as Backend[]) {
    const tokens: number[][] = [];
    for (const file of [original, twin]) {
      const target = await loadTarget(backend, file);
      try {
        tokens.push((await generate(target, new NoDrafter(), { prompt: "Once upon a time, there was a little dog named Max.", maxTokens: 48 })).tokens);
      } finally {
        await target.dispose();
      }
    }
    assert.ok(tokens[0].length >= 16);
    assert.deepEqual(tokens[1], tokens[0], `${backend}: the twin must decode exactly like the original`);
  }
  // It says what it is.
  const f = openGguf(twin);
  try {
    assert.equal(metaNumber(f, "llama.feed_forward_length"), 3072);
    assert.match(metaString(f, "general.name") ?? "", /heavy twin/);
    assert.match(metaString(f, "specdec.inflated_from") ?? "", /stories-target\.gguf: feed-forward 384 -> 3072 .*q8_0/);
    assert.equal(metaNumber(f, "general.file_type"), 7);
  } finally {
    f.close();
  }
});

test("--params picks the feed-forward length that reaches the count", () => {
  assert.equal(parseParamCount("100M"), 100_000_000);
  assert.equal(parseParamCount("1.5B"), 1_500_000_000);
  assert.equal(parseParamCount("250k"), 250_000);
  assert.throws(() => parseParamCount("lots"), /not a number like 100M/);
  const out = join(tmp, "twin-5M.gguf");
  const r = inflateModel(SOURCE, out, { params: 5e6, type: "q4_0" });
  assert.ok(r.params >= 5e6 && r.params < 5e6 + 3 * 128 * 5 * 32, `${r.params} parameters`);
  assert.equal(r.ffnTo % 32, 0);
});

test("bad input: other architectures, an existing --out without --force, a count below the model's, odd blocks", () => {
  const mamba = join(tmp, "mamba.gguf");
  writeGguf(mamba, { metadata: [kv.string("general.architecture", "mamba"), kv.strings("tokenizer.ggml.tokens", ["a", "b"])], tensors: [{ name: "w", dims: [4], type: 0, data: new Uint8Array(16) }] });
  const oneLine = (r: ReturnType<typeof cli>, pattern: RegExp) => {
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  };
  oneLine(cli("inflate", "--model", mamba, "--params", "10M", "--out", join(tmp, "x.gguf")), /architecture 'mamba' is not supported/);
  const existing = join(tmp, "existing.gguf");
  writeFileSync(existing, "keep me");
  oneLine(cli("inflate", "--model", SOURCE, "--ffn", "512", "--out", existing), /already exists: pass --force/);
  oneLine(cli("inflate", "--model", SOURCE, "--params", "1M", "--out", join(tmp, "small.gguf")), /already has 1197440 parameters, more than 1000000/);
  oneLine(cli("inflate", "--model", SOURCE, "--ffn", "400", "--out", join(tmp, "odd.gguf")), /not a multiple of the q8_0 block \(32\)/);
  oneLine(cli("inflate", "--model", SOURCE, "--ffn", "200", "--out", join(tmp, "less.gguf")), />= the model's own 384/);
  oneLine(cli("inflate", "--model", SOURCE, "--params", "10M", "--ffn", "512", "--out", join(tmp, "both.gguf")), /exactly one of --params and --ffn/);
  const ok = cli("inflate", "--model", SOURCE, "--ffn", "512", "--type", "f16", "--out", existing, "--force");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /feed-forward 384 -> 512/);
});
