// Regression tests for what the fuzz campaign found in the reader and the tokenizers (issue 15,
// items 2 and 4 and after). Each starts from a shared or committed seed file, makes the one
// edit in a copy in the temp folder, and checks the fix; the CLI's findings are in cli.test.ts.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { LlamaCppTarget } from "../src/targets/llamaCpp/llamaCppTarget.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { NoDrafter } from "../src/drafters/none.js";
import { excerpt, SpecdecError } from "../src/errors.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { GgufValueType, openGguf } from "../src/gguf/reader.js";
import { writeGguf } from "../src/gguf/writer.js";
import { defaultModels } from "../src/defaultModels.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { loadTokenizer, TokenTextDecoder } from "../src/tokenizer/index.js";

const dir = mkdtempSync(join(tmpdir(), "specdec-fuzz-findings-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const STORIES = sharedFile("models", "stories260K.gguf");
const TARGET = defaultModels().target;

/** A copy of `seed` with `edit` applied, in the temp folder. */
function edited(seed: string, name: string, edit: (b: Buffer) => void): string {
  const b = readFileSync(seed);
  edit(b);
  const path = join(dir, name);
  writeFileSync(path, b);
  return path;
}

/** Offset of metadata `key`'s u64 length in the header. */
function keyAt(b: Buffer, key: string): number {
  const k = Buffer.alloc(8 + key.length);
  k.writeBigUInt64LE(BigInt(key.length));
  k.write(key, 8);
  const at = b.indexOf(k);
  assert.ok(at > 0, `metadata ${key} not found`);
  return at;
}

/** The SpecdecError openGguf throws for `path`. */
function readerError(path: string): SpecdecError {
  try {
    openGguf(path).close();
  } catch (e) {
    assert.ok(e instanceof SpecdecError, `expected a SpecdecError, got ${(e as Error)?.stack ?? e}`);
    return e;
  }
  assert.fail(`${path} was accepted`);
}

/** One short line, no control characters. */
function assertFitMessage(m: string, limit = 400): void {
  assert.ok(m.length <= limit, `a message of ${m.length} characters: ${m.slice(0, 200)}…`);
  assert.doesNotMatch(m, /[\u0000-\u001f\u007f-\u009f]/, `control characters in ${JSON.stringify(m.slice(0, 200))}`);
}

// ---- item 2: messages quote file bytes only as short, escaped excerpts ----

test("excerpt: short printable text as is; long or unsafe text escaped, cut and measured", () => {
  assert.equal(excerpt("blk.0.attn_q.weight"), "blk.0.attn_q.weight");
  assert.equal(excerpt("a\nb\u0000c\u001b[31m"), "a\\u000ab\\u0000c\\u001b[31m");
  assert.equal(excerpt("back\\slash"), "back\\slash", "a backslash alone stays");
  assert.equal(excerpt("back\\slash\n"), "back\\\\slash\\u000a", "doubled once something is escaped");
  assert.equal(excerpt("x".repeat(100)), `${"x".repeat(64)}… (100 characters)`);
  assert.equal(excerpt("\u202eevil"), "\\u202eevil", "bidirectional overrides are escaped");
  const cut = excerpt("x".repeat(63) + "😀" + "y");
  assert.ok(cut.startsWith("x".repeat(63) + "…"), `a surrogate pair is never split: ${cut}`);
});

test("a key length with one byte set to 0x40 (stories-target.gguf) gives a short one-line message, not 4 MB of file bytes", () => {
  // The first key's u64 length is at offset 24; its byte 2 = 0x40 makes a 4,194,324-byte "key".
  const path = edited(TARGET, "key-length.gguf", (b) => (b[24 + 2] = 0x40));
  const e = readerError(path);
  assertFitMessage(e.message);
  assert.match(e.message, /metadata general\.architecture\\u0008\\u0000.*… \(\d{6,} characters\)/);
});

test("a tensor name length with one byte set to 0x41 (stories-draft.gguf) gives a short one-line message", () => {
  const draft = defaultModels().draft;
  const b = readFileSync(draft);
  const name = "blk.1.attn_output.weight";
  const at = b.indexOf(Buffer.concat([Buffer.from([name.length, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(name)]));
  assert.ok(at > 0);
  const path = edited(draft, "name-length.gguf", (x) => (x[at + 1] = 0x41));
  const e = readerError(path);
  assertFitMessage(e.message);
});

// ---- item 4: non-regular files, general.alignment ----

test("a FIFO, a directory or a device as a model is refused before it is opened (a FIFO would block forever)", () => {
  const fifo = join(dir, "model.fifo");
  execFileSync("mkfifo", [fifo]);
  // In a child process: opening a FIFO blocks the thread, so a regression must not hang this test file.
  const reader = pathToFileURL(join(PROJECT_ROOT, "dist", "src", "gguf", "reader.js")).href;
  const script = `const { openGguf } = await import(${JSON.stringify(reader)}); try { openGguf(${JSON.stringify(fifo)}); } catch (e) { console.log(e.message); }`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  assert.equal(r.signal, null, "openGguf blocked on the FIFO");
  assert.match(r.stdout, /is a FIFO \(named pipe\), not a GGUF file/);
  assert.match(readerError(dir).message, /is a directory, not a GGUF file/);
  assert.match(readerError("/dev/zero").message, /is a device, not a GGUF file/);
});

test("general.alignment as a float (stories260K.gguf: its u32 32 retyped to f32 0.5) is refused, as gguf.cpp does", () => {
  const path = edited(STORIES, "alignment-f32.gguf", (b) => {
    const at = keyAt(b, "general.alignment") + 8 + "general.alignment".length;
    assert.equal(b.readUInt32LE(at), GgufValueType.UINT32);
    assert.equal(b.readUInt32LE(at + 4), 32);
    b.writeUInt32LE(GgufValueType.FLOAT32, at); // the one byte 4 -> 6 ...
    b.writeFloatLE(0.5, at + 4); // ... and the value 0.5 in its place
  });
  assert.match(readerError(path).message, /general\.alignment must be a power of two, got 0\.5 \(f32; GGUF requires a u32\)/);
  // The type byte alone: the bits of u32 32 read as a float (4.5e-44).
  const retyped = edited(STORIES, "alignment-retyped.gguf", (b) => (b[keyAt(b, "general.alignment") + 8 + "general.alignment".length] = GgufValueType.FLOAT32));
  assert.match(readerError(retyped).message, /general\.alignment must be a power of two, got 4\.48\d*e-44 \(f32/);
});

// ---- found by the fuzzer after: repeated keys and tensor names, over-long names ----

test("a repeated metadata key (stories260K.gguf: 'eos' of tokenizer.ggml.eos_token_id set to 'bos') is refused, as gguf.cpp does", () => {
  const path = edited(STORIES, "duplicate-key.gguf", (b) => (b[keyAt(b, "tokenizer.ggml.eos_token_id") + 8 + "tokenizer.ggml.".length] = "b".charCodeAt(0)));
  assert.match(readerError(path).message, /metadata key tokenizer\.ggml\.bos_token_id appears twice/);
});

test("a repeated tensor name (stories260K.gguf: blk.0.attn_k.weight renamed blk.0.attn_q.weight) is refused, as gguf.cpp does", () => {
  const path = edited(STORIES, "duplicate-tensor.gguf", (b) => {
    const at = b.indexOf("blk.0.attn_k.weight");
    assert.ok(at > 0);
    b[at + "blk.0.attn_".length] = "q".charCodeAt(0);
  });
  assert.match(readerError(path).message, /tensor blk\.0\.attn_q\.weight appears twice/);
});

test("a tensor name of 64 bytes or more is refused (GGML_MAX_NAME), with a short message", () => {
  const path = join(dir, "long-name.gguf");
  writeGguf(path, { metadata: [], tensors: [{ name: "x".repeat(200), dims: [1], type: GgmlType.F32, data: new Uint8Array(4) }] });
  const m = readerError(path).message;
  assert.match(m, /tensor name x{64}… \(200 characters\) is longer than GGUF's 63 bytes/);
  assertFitMessage(m);
  const ok = join(dir, "name-63.gguf");
  writeGguf(ok, { metadata: [], tensors: [{ name: "x".repeat(63), dims: [1], type: GgmlType.F32, data: new Uint8Array(4) }] });
  openGguf(ok).close();
});

// ---- item 4: a leading U+FEFF survives detokenization, as in llama.cpp ----

const BOM_TEXTS = ["\ufeffHello", "\ufeff", "a\ufeffb", "\ufeff\ufeffOnce"];

test("a leading U+FEFF is kept by detokenize and by streaming detokenization (SentencePiece, byte-level BPE)", () => {
  const vocabs = [STORIES, TARGET, sharedFile("tokenizers", "gguf-vocab", "ggml-vocab-llama-spm.gguf"), sharedFile("tokenizers", "gguf-vocab", "ggml-vocab-gpt-2.gguf")];
  for (const path of vocabs) {
    const f = openGguf(path);
    const tk = loadTokenizer(f);
    f.close();
    for (const text of BOM_TEXTS) {
      const ids = tk.tokenize(text);
      assert.equal(tk.detokenize(ids), text, `${path}: ${JSON.stringify(text)}`);
      const d = new TokenTextDecoder(tk);
      assert.equal(ids.map((t) => d.push(t)).join("") + d.flush(), text, `${path} streamed: ${JSON.stringify(text)}`);
    }
  }
});

test("stories260K: a prompt with a leading U+FEFF gives llama.cpp's tokens and text back on both backends", async () => {
  const llama = await LlamaCppTarget.load(STORIES);
  const builtin = await BuiltinTarget.load(STORIES, { contextSize: 64 });
  try {
    for (const text of BOM_TEXTS) {
      const ids = llama.tokenize(text, false);
      assert.deepEqual(builtin.tokenize(text, false), ids, JSON.stringify(text));
      assert.equal(llama.detokenize(ids), text, `llama.cpp keeps it: ${JSON.stringify(text)}`);
      assert.equal(builtin.detokenize(ids), text, JSON.stringify(text));
    }
  } finally {
    await llama.dispose();
    await builtin.dispose();
  }
});

// ---- item 4: an empty stop string ----

test("generate refuses an empty stop string (it would end the generation at once)", async () => {
  const target = await BuiltinTarget.load(STORIES, { contextSize: 64 });
  await assert.rejects(generate(target, new NoDrafter(), { prompt: "Once upon a time", maxTokens: 8, stop: ["\n", ""] }), (e) => e instanceof SpecdecError && /stop strings must be non-empty/.test(e.message));
  const r = await generate(target, new NoDrafter(), { prompt: "Once upon a time", maxTokens: 8, stop: ["zzz"] });
  assert.equal(r.tokens.length, 8);
});
