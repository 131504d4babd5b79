// Engine-level bad input: a broken or hostile GGUF must give one clear SpecdecError line, from
// BuiltinTarget.load and from the CLI (`generate --backend builtin`), never a hang, an
// out-of-memory crash or a stack trace. Each case starts from a small valid model (which is
// checked to load) and breaks one thing.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { SpecdecError } from "../src/errors.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { GgufValueType } from "../src/gguf/reader.js";
import { kv, writeGguf, type GgufWriteEntry, type GgufWriteTensor } from "../src/gguf/writer.js";
import { PROJECT_ROOT } from "./support/sharedData.js";
import type { Token } from "../src/types.js";
import { randomModel } from "./support/randomModel.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");

// A tiny valid llama: dim 64, 2 heads, 1 layer, F32, the stories260K tokenizer.
const model = randomModel({ arch: "llama", dim: 64, ffn: 128, heads: 2, layers: 1, seed: 3 });
const META = model.metadata;
const TENSORS = model.tensors(GgmlType.F32);

let dir: string;
let validPath: string;
let validBytes: Buffer;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-bad-input-"));
  validPath = join(dir, "valid.gguf");
  writeGguf(validPath, { metadata: META, tensors: TENSORS });
  validBytes = readFileSync(validPath);
});
after(() => {
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function writeModel(metadata: readonly GgufWriteEntry[], tensors: readonly GgufWriteTensor[]): string {
  const path = join(dir, `case-${n++}.gguf`);
  writeGguf(path, { metadata, tensors });
  return path;
}
function writeBytes(bytes: Uint8Array): string {
  const path = join(dir, `case-${n++}.gguf`);
  writeFileSync(path, bytes);
  return path;
}

/** The metadata with `key` replaced by `entry` (or removed when entry is undefined). */
function withMeta(key: string, entry?: GgufWriteEntry): GgufWriteEntry[] {
  const out = META.filter((e) => e.key !== key);
  if (entry) out.push(entry);
  return out;
}

// ---- patching bytes of a valid file ----

function u64le(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

/** Offset of the tensor info of `name` in the header: the u32 n_dims right after the name. */
function tensorInfoOffset(bytes: Buffer, name: string): number {
  const key = Buffer.concat([u64le(BigInt(Buffer.byteLength(name))), Buffer.from(name)]);
  const at = bytes.indexOf(key);
  assert.ok(at > 0, `tensor info ${name} not found`);
  return at + key.length;
}

/** Offset of the value of metadata `key` (after its u32 type). */
function metaValueOffset(bytes: Buffer, key: string): number {
  const k = Buffer.concat([u64le(BigInt(Buffer.byteLength(key))), Buffer.from(key)]);
  const at = bytes.indexOf(k);
  assert.ok(at > 0, `metadata ${key} not found`);
  return at + k.length + 4;
}

function patched(patch: (b: Buffer) => void): string {
  const b = Buffer.from(validBytes);
  patch(b);
  return writeBytes(b);
}

// ---- the cases ----

interface Case {
  name: string;
  path: () => string;
  /** What the one-line message must say. */
  message: RegExp;
}

const norm = "blk.0.attn_norm.weight";
const wq = "blk.0.attn_q.weight";

const CASES: Case[] = [
  { name: "missing file", path: () => join(dir, "no-such-file.gguf"), message: /model file not found/ },
  { name: "a directory", path: () => dir, message: /is a directory/ },
  { name: "empty file", path: () => writeBytes(new Uint8Array(0)), message: /not a GGUF file/ },
  { name: "not a GGUF file", path: () => writeBytes(Buffer.from("this is a text file, not a model\n")), message: /not a GGUF file \(bad magic\)/ },
  { name: "unsupported GGUF version", path: () => patched((b) => b.writeUInt32LE(7, 4)), message: /unsupported GGUF version 7/ },
  { name: "truncated in the header", path: () => writeBytes(validBytes.subarray(0, 3000)), message: /truncated GGUF file|runs past the end/ },
  { name: "truncated in the tensor data", path: () => writeBytes(validBytes.subarray(0, validBytes.length - 1000)), message: /truncated GGUF file \(tensor .* data runs past the end of the file/ },
  { name: "tensor data offset past the end", path: () => patched((b) => b.writeBigUInt64LE(1n << 40n, tensorInfoOffset(b, wq) + 4 + 2 * 8 + 4)), message: /tensor blk\.0\.attn_q\.weight data runs past the end/ },
  { name: "tensor data offset not aligned", path: () => patched((b) => b.writeBigUInt64LE(b.readBigUInt64LE(tensorInfoOffset(b, wq) + 4 + 2 * 8 + 4) + 4n, tensorInfoOffset(b, wq) + 4 + 2 * 8 + 4)), message: /not aligned/ },
  { name: "unknown tensor type id", path: () => patched((b) => b.writeUInt32LE(99, tensorInfoOffset(b, wq) + 4 + 2 * 8)), message: /tensor blk\.0\.attn_q\.weight has unknown or unsupported type 99/ },
  {
    name: "a ggml type the engine does not run (Q8_1)",
    path: () => writeModel(META, TENSORS.map((t) => (t.name === "blk.0.ffn_down.weight" ? { ...t, type: GgmlType.Q8_1, data: new Uint8Array((128 / 32) * 36 * 64) } : t))),
    message: /tensor blk\.0\.ffn_down\.weight has type Q8_1, not supported by the built-in engine/,
  },
  { name: "5 tensor dimensions", path: () => patched((b) => b.writeUInt32LE(5, tensorInfoOffset(b, norm))), message: /has 5 dimensions|truncated|runs past/ },
  { name: "tensor dimensions overflowing", path: () => patched((b) => { const o = tensorInfoOffset(b, wq); b.writeBigUInt64LE(1n << 40n, o + 4); b.writeBigUInt64LE(1n << 40n, o + 12); }), message: /absurd dimensions/ },
  { name: "tensor count absurd", path: () => patched((b) => b.writeBigUInt64LE(1n << 40n, 8)), message: /absurd counts in GGUF header/ },
  { name: "tensor count above 2^53", path: () => patched((b) => b.writeBigUInt64LE(0xffffffffffffffffn, 8)), message: /absurd tensor count/ },
  { name: "metadata count absurd", path: () => patched((b) => b.writeBigUInt64LE(1n << 50n, 16)), message: /absurd counts in GGUF header/ },
  { name: "metadata string length absurd", path: () => patched((b) => b.writeBigUInt64LE(1n << 50n, metaValueOffset(b, "general.name"))), message: /string length \d+ at offset \d+ runs past the end of the file/ },
  { name: "metadata key length absurd", path: () => patched((b) => b.writeBigUInt64LE(1n << 40n, 24)), message: /string length \d+ at offset 24 runs past the end of the file/ },
  { name: "metadata key length above 2^53", path: () => patched((b) => b.writeBigUInt64LE(1n << 62n, 24)), message: /absurd string length \d+ in GGUF header/ },
  { name: "metadata array length absurd", path: () => patched((b) => b.writeBigUInt64LE(1n << 40n, metaValueOffset(b, "tokenizer.ggml.tokens") + 4)), message: /array of \d+ items runs past the end of the file/ },
  { name: "unknown metadata value type", path: () => patched((b) => b.writeUInt32LE(77, metaValueOffset(b, "general.name") - 4)), message: /unknown metadata value type 77/ },
  { name: "unknown architecture", path: () => writeModel(withMeta("general.architecture", kv.string("general.architecture", "mamba")), TENSORS), message: /architecture 'mamba' is not supported by the built-in engine \(supported: llama, qwen2/ },
  { name: "no architecture", path: () => writeModel(withMeta("general.architecture"), TENSORS), message: /architecture '' is not supported/ },
  { name: "missing embedding_length", path: () => writeModel(withMeta("llama.embedding_length"), TENSORS), message: /missing llama\.embedding_length/ },
  { name: "embedding_length 2^40", path: () => writeModel(withMeta("llama.embedding_length", kv.u64("llama.embedding_length", 1n << 40n)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "embedding_length 2^64-1", path: () => writeModel(withMeta("llama.embedding_length", kv.u64("llama.embedding_length", 0xffffffffffffffffn)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "embedding_length not an integer", path: () => writeModel(withMeta("llama.embedding_length", kv.f32("llama.embedding_length", 64.5)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "feed_forward_length 2^40", path: () => writeModel(withMeta("llama.feed_forward_length", kv.u64("llama.feed_forward_length", 1n << 40n)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "block_count 1e9", path: () => writeModel(withMeta("llama.block_count", kv.u32("llama.block_count", 1e9)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "block_count 2 with tensors for 1", path: () => writeModel(withMeta("llama.block_count", kv.u32("llama.block_count", 2)), TENSORS), message: /tensor blk\.1\.attn_norm\.weight is missing/ },
  { name: "block_count -1", path: () => writeModel(withMeta("llama.block_count", kv.i32("llama.block_count", -1)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "context_length 2^40", path: () => writeModel(withMeta("llama.context_length", kv.u64("llama.context_length", 1n << 40n)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "head_count 0", path: () => writeModel(withMeta("llama.attention.head_count", kv.u32("llama.attention.head_count", 0)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "head_count not dividing embedding_length", path: () => writeModel(withMeta("llama.attention.head_count", kv.u32("llama.attention.head_count", 3)), TENSORS), message: /absurd or inconsistent|inconsistent attention shape/ },
  { name: "head_count_kv 0", path: () => writeModel(withMeta("llama.attention.head_count_kv", kv.u32("llama.attention.head_count_kv", 0)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "head_count_kv above head_count", path: () => writeModel(withMeta("llama.attention.head_count_kv", kv.u32("llama.attention.head_count_kv", 4)), TENSORS), message: /absurd or inconsistent model dimensions/ },
  { name: "rope dimension_count odd", path: () => writeModel(withMeta("llama.rope.dimension_count", kv.u32("llama.rope.dimension_count", 31)), TENSORS), message: /inconsistent attention shape/ },
  { name: "rope freq_base 0", path: () => writeModel(withMeta("llama.rope.freq_base", kv.f32("llama.rope.freq_base", 0)), TENSORS), message: /rope\.freq_base/ },
  { name: "rope freq_base NaN", path: () => writeModel(withMeta("llama.rope.freq_base", kv.f32("llama.rope.freq_base", NaN)), TENSORS), message: /rope\.freq_base/ },
  { name: "rms epsilon negative", path: () => writeModel(withMeta("llama.attention.layer_norm_rms_epsilon", kv.f32("llama.attention.layer_norm_rms_epsilon", -1)), TENSORS), message: /layer_norm_rms_epsilon/ },
  { name: "rope scaling factor negative", path: () => writeModel([...META, kv.string("llama.rope.scaling.type", "linear"), kv.f32("llama.rope.scaling.factor", -2)], TENSORS), message: /rope\.scaling\.factor/ },
  { name: "rope scaling factor NaN", path: () => writeModel([...META, kv.string("llama.rope.scaling.type", "linear"), kv.f32("llama.rope.scaling.factor", NaN)], TENSORS), message: /rope\.scaling\.factor/ },
  { name: "rope scaling yarn", path: () => writeModel([...META, kv.string("llama.rope.scaling.type", "yarn"), kv.f32("llama.rope.scaling.factor", 4)], TENSORS), message: /rope scaling 'yarn' is not supported/ },
  { name: "missing tensor", path: () => writeModel(META, TENSORS.filter((t) => t.name !== "blk.0.ffn_up.weight")), message: /tensor blk\.0\.ffn_up\.weight is missing/ },
  { name: "missing output norm", path: () => writeModel(META, TENSORS.filter((t) => t.name !== "output_norm.weight")), message: /tensor output_norm\.weight is missing/ },
  {
    name: "tensor with the wrong shape",
    path: () => writeModel(META, TENSORS.map((t) => (t.name === wq ? { ...t, dims: [32, 128] } : t))),
    message: /tensor blk\.0\.attn_q\.weight has shape \[32, 128\], expected \[64, 64\]/,
  },
  {
    name: "tensor with an extra dimension",
    path: () => writeModel(META, TENSORS.map((t) => (t.name === norm ? { ...t, dims: [64, 1] } : t))),
    message: /tensor blk\.0\.attn_norm\.weight has shape \[64, 1\], expected \[64\]/,
  },
  {
    name: "qwen2 without its attention biases",
    path: () => writeModel(META.map((e) => (e.key === "general.architecture" ? kv.string(e.key, "qwen2") : { ...e, key: e.key.replace(/^llama\./, "qwen2.") })), TENSORS),
    message: /tensor blk\.0\.attn_q\.bias is missing/,
  },
  { name: "tokenizer missing", path: () => writeModel(META.filter((e) => !e.key.startsWith("tokenizer.")), TENSORS), message: /tokeni[sz]er|vocab/i },
  {
    name: "tokens that are not strings",
    path: () => writeModel(withMeta("tokenizer.ggml.tokens", kv.array("tokenizer.ggml.tokens", GgufValueType.UINT32, Array.from({ length: 512 }, (_, i) => i))), TENSORS),
    message: /tokeni[sz]er|tokens/i,
  },
  {
    name: "bad general.alignment",
    path: () => {
      const b = readFileSync(writeModel([...META, kv.u32("general.alignment", 32)], TENSORS));
      b.writeUInt32LE(3, metaValueOffset(b, "general.alignment"));
      return writeBytes(b);
    },
    message: /general\.alignment must be a power of two, got 3/,
  },
];

function oneLineSpecdecError(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof SpecdecError, `expected a SpecdecError, got ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(!e.message.includes("\n"), `message has more than one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  };
}

test("bad input: the valid starting model loads and runs (the cases below each break one thing)", async () => {
  const target = await BuiltinTarget.load(validPath, { contextSize: 16 });
  const d = (await target.evaluate([1, 100, 200] as Token[])).probs!;
  assert.equal(d.length, 3);
  assert.ok(Math.abs(d[2].reduce((a, b) => a + b, 0) - 1) < 1e-4);
  await target.dispose();
});

for (const c of CASES) {
  test(`bad input, BuiltinTarget.load: ${c.name}`, { timeout: 20_000 }, async () => {
    const path = c.path();
    await assert.rejects(BuiltinTarget.load(path), oneLineSpecdecError(c.message));
  });
}

// The CLI: one line on stderr, non-zero exit, no stack trace, for a representative subset (each
// run starts a process).
const CLI_CASES = ["truncated in the tensor data", "unknown tensor type id", "unknown architecture", "embedding_length 2^40", "block_count 1e9", "context_length 2^40", "missing tensor", "tensor with the wrong shape", "metadata string length absurd", "tensor count absurd"];

test("bad input, CLI generate --backend builtin: one line on stderr, exit code 1, no stack trace", { timeout: 120_000 }, () => {
  for (const name of CLI_CASES) {
    const c = CASES.find((x) => x.name === name)!;
    const path = c.path();
    const r = spawnSync(process.execPath, [BIN, "generate", "--backend", "builtin", "--model", path, "--prompt", "hi", "--max-tokens", "4"], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.signal, null, `${name}: killed by ${r.signal} (hang?)`);
    assert.equal(r.status, 1, `${name}: exit code ${r.status}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `${name}: one-line error expected, got:\n${r.stderr}`);
    assert.match(lines[0], /^specdec: error: /, name);
    assert.match(lines[0], c.message, name);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `${name}: stack trace`);
    assert.equal(r.stdout, "", name);
  }
});
