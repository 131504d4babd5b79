import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SpecdecError } from "../src/errors.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { GgufValueType, metaArray, metaNumber, metaString, openGguf } from "../src/gguf/reader.js";
import { kv, writeGguf, type GgufWriteTensor } from "../src/gguf/writer.js";

const dir = mkdtempSync(join(tmpdir(), "specdec-gguf-writer-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

const METADATA = [
  kv.string("general.architecture", "llama"),
  kv.string("general.name", "hello \u00e9\u4e16"),
  kv.u8("t.u8", 255), kv.i8("t.i8", -128), kv.u16("t.u16", 65535), kv.i16("t.i16", -32768),
  kv.u32("t.u32", 0xffffffff), kv.i32("t.i32", -0x80000000),
  kv.u64("t.u64", 0xffffffffffffffffn), kv.i64("t.i64", -(1n << 63n)),
  kv.f32("t.f32", 0.5), kv.f64("t.f64", Math.PI), kv.bool("t.true", true), kv.bool("t.false", false),
  kv.strings("t.strings", ["a", "", "\u00fcber"]),
  kv.f32s("t.f32s", [1.5, -2.25]),
  kv.i32s("t.i32s", [-1, 2, 3]),
  kv.u32s("t.u32s", []),
  kv.array("t.u64s", GgufValueType.UINT64, [1n, 2n]),
  kv.array("t.nested", GgufValueType.ARRAY, [{ itemType: GgufValueType.INT8, items: [1, -2] }, { itemType: GgufValueType.STRING, items: ["x"] }]),
];

const TENSORS: GgufWriteTensor[] = [
  { name: "a.f32", dims: [3], type: GgmlType.F32, data: new Uint8Array(new Float32Array([1, 2, 3]).buffer) },
  { name: "b.q8_0", dims: [64, 2], type: GgmlType.Q8_0, data: bytes(34 * 4, 1) },
  { name: "c.f16", dims: [5, 1, 1], type: GgmlType.F16, data: bytes(10, 2) },
  { name: "d.q4_k", dims: [256], type: GgmlType.Q4_K, data: bytes(144, 3) },
];

function writeSample(name: string, alignment?: number): string {
  const p = join(dir, name);
  writeGguf(p, { metadata: METADATA, tensors: TENSORS, alignment });
  return p;
}

test("writer round trip: every metadata type, several tensor types, non-default alignment", () => {
  const p = writeSample("rt.gguf", 64);
  const f = openGguf(p);
  try {
    assert.equal(f.version, 3);
    assert.equal(f.alignment, 64);
    assert.equal(metaNumber(f, "general.alignment"), 64);
    assert.equal(metaString(f, "general.name"), "hello \u00e9\u4e16");
    for (const e of METADATA) {
      const got = f.metadata.get(e.key);
      assert.ok(got, e.key);
      assert.equal(got.type, e.type, e.key);
      assert.deepEqual(got.value, e.value, e.key);
    }
    assert.deepEqual(metaArray(f, "t.strings"), ["a", "", "\u00fcber"]);
    assert.equal(f.tensors.length, TENSORS.length);
    for (const [i, t] of TENSORS.entries()) {
      const info = f.tensors[i];
      assert.equal(info.name, t.name);
      assert.deepEqual(info.dims, t.dims);
      assert.equal(info.type, t.type);
      assert.equal((info.offset - f.dataOffset) % 64, 0);
      assert.equal(info.offset % 64, 0);
      assert.deepEqual(f.readTensorData(info), t.data);
    }
  } finally {
    f.close();
  }
  // No temporary files left behind.
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(".tmp")), []);
});

test("writer round trip of a header past 64 KiB (its buffer grows in the middle of values: it used to throw or cut a string)", () => {
  // 30,000 token texts of 5 to 9 bytes: the 64 KiB starting buffer grows several times, at
  // every kind of boundary (inside a length, inside a string, inside a u32 or an f32).
  const tokens = Array.from({ length: 30_000 }, (_, i) => `t${i}`);
  const scores = Array.from({ length: 30_000 }, (_, i) => i / 7);
  const p = join(dir, "big-header.gguf");
  writeGguf(p, { metadata: [kv.strings("tokenizer.ggml.tokens", tokens), kv.f32s("tokenizer.ggml.scores", scores), kv.u32s("t.ids", tokens.map((_, i) => i)), kv.string("t.last", "end")], tensors: TENSORS });
  const f = openGguf(p);
  try {
    assert.ok(f.dataOffset > 3 * 65536, `header of ${f.dataOffset} bytes`);
    assert.deepEqual(metaArray(f, "tokenizer.ggml.tokens"), tokens);
    assert.deepEqual(metaArray(f, "tokenizer.ggml.scores"), scores.map((x) => Math.fround(x)));
    assert.deepEqual(metaArray(f, "t.ids"), tokens.map((_, i) => i));
    assert.equal(metaString(f, "t.last"), "end");
    for (const [i, t] of TENSORS.entries()) assert.deepEqual(f.readTensorData(f.tensors[i]), t.data);
  } finally {
    f.close();
  }
});

test("writer with the default alignment writes no general.alignment", () => {
  const p = writeSample("default.gguf");
  const f = openGguf(p);
  try {
    assert.equal(f.alignment, 32);
    assert.equal(f.metadata.has("general.alignment"), false);
    assert.deepEqual(f.readTensorData(f.tensors[3]), TENSORS[3].data);
  } finally {
    f.close();
  }
});

test("writer refuses to overwrite unless asked", () => {
  const p = join(dir, "exists.gguf");
  writeFileSync(p, "precious");
  assert.throws(() => writeGguf(p, { metadata: METADATA, tensors: TENSORS }), (e: unknown) => e instanceof SpecdecError && /already exists/.test(e.message));
  assert.equal(readFileSync(p, "utf8"), "precious");
  writeGguf(p, { metadata: METADATA, tensors: TENSORS, overwrite: true });
  const f = openGguf(p);
  f.close();
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(".tmp")), []);
});

test("writer rejects bad input with one-line errors", () => {
  const p = join(dir, "bad.gguf");
  const bad = (opts: Parameters<typeof writeGguf>[1], re: RegExp): void => {
    assert.throws(() => writeGguf(p, opts), (e: unknown) => e instanceof SpecdecError && re.test(e.message) && !e.message.includes("\n"));
    assert.equal(existsSync(p), false);
  };
  bad({ metadata: [kv.u8("x", 256)], tensors: [] }, /integer in 0..255/);
  bad({ metadata: [kv.u32("x", 1), kv.u32("x", 2)], tensors: [] }, /duplicate metadata key/);
  bad({ metadata: [], tensors: [{ name: "t", dims: [32], type: GgmlType.Q8_0, data: new Uint8Array(33) }] }, /needs 34 bytes/);
  bad({ metadata: [], tensors: [{ name: "t", dims: [31], type: GgmlType.Q8_0, data: new Uint8Array(34) }] }, /block size 32/);
  bad({ metadata: [], tensors: [], alignment: 48 }, /power of two/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(".tmp")), []);
});

// ---- the reader on damaged copies of a written file ----

const sample = readFileSync(writeSample("base.gguf"));

function expectReadError(name: string, data: Uint8Array, re: RegExp): void {
  const p = join(dir, name);
  writeFileSync(p, data);
  const t0 = Date.now();
  assert.throws(
    () => {
      const f = openGguf(p);
      f.close();
    },
    (e: unknown) => e instanceof SpecdecError && re.test(e.message) && !e.message.includes("\n"),
    name,
  );
  assert.ok(Date.now() - t0 < 2000, `${name}: took too long`);
}

/** Offset of the first occurrence of a UTF-8 string in the sample. */
function find(s: string): number {
  const at = Buffer.from(sample).indexOf(Buffer.from(s, "utf8"));
  assert.ok(at > 0, s);
  return at;
}

test("reader: truncated copies fail clearly (header, metadata, tensor infos, tensor data)", () => {
  expectReadError("cut-header.gguf", sample.subarray(0, 12), /truncated/);
  expectReadError("cut-metadata.gguf", sample.subarray(0, find("t.strings") + 3), /truncated|runs past/);
  expectReadError("cut-infos.gguf", sample.subarray(0, find("c.f16") + 2), /truncated|runs past/);
  expectReadError("cut-data.gguf", sample.subarray(0, sample.length - 5), /truncated/);
});

test("reader: bad magic", () => {
  const b = Buffer.from(sample);
  b.write("GGUX", 0, "latin1");
  expectReadError("magic.gguf", b, /not a GGUF file/);
});

test("reader: absurd lengths and counts patched into the header", () => {
  const patch = (name: string, at: number, v: bigint, re: RegExp): void => {
    const b = Buffer.from(sample);
    b.writeBigUInt64LE(v, at);
    expectReadError(name, b, re);
  };
  // The tensor count and metadata count (u64 at offsets 8 and 16).
  patch("tensor-count.gguf", 8, 1n << 40n, /absurd counts/);
  patch("tensor-count-max.gguf", 8, 0xffffffffffffffffn, /absurd tensor count/);
  patch("kv-count.gguf", 16, 1n << 32n, /absurd counts/);
  // The length of t.strings: after key length (8), key, value type (4), item type (4).
  const arrLen = find("t.strings") + "t.strings".length + 8;
  patch("array-length.gguf", arrLen, 1n << 50n, /array of \d+ items runs past/);
  patch("array-length-max.gguf", arrLen, 0xffffffffffffffffn, /absurd array length/);
  // The byte length of the string value of general.architecture ("llama"), just before it.
  const strLen = find("llama") - 8;
  patch("string-length.gguf", strLen, 1n << 40n, /string length \d+ .*runs past/);
  patch("string-length-max.gguf", strLen, 0xffffffffffffffffn, /absurd string length/);
  // A tensor dimension so large that its data cannot be in the file.
  const dim0 = find("a.f32") + "a.f32".length + 4;
  patch("tensor-dim.gguf", dim0, 1n << 40n, /truncated|absurd/);
});
