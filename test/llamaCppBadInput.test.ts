// Bad input through the llama.cpp backend never reaches libllama unchecked: one-byte edits of
// the shared and committed model files (made here, written to a temp folder), a missing
// platform package, a file libllama itself refuses. A crash inside a native call would kill the
// process, so every case runs the CLI in a child process: exit code 1, no signal, one line on
// stderr. The first three are the crashes issue 15 found (SIGABRT, SIGSEGV, an allocation that
// never ends); the I32 one was reproduced without the checks (exit by SIGSEGV).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultModels } from "../src/defaultModels.js";
import { openGguf } from "../src/gguf/reader.js";
import { kv, writeGguf, type GgufWriteEntry, type GgufWriteTensor } from "../src/gguf/writer.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const STORIES = sharedFile("models", "stories260K.gguf");
const TARGET = defaultModels().target;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-llamacpp-bad-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Offset of the first byte of a metadata key's (or tensor name's) text in a GGUF file. */
function nameAt(b: Buffer, name: string): number {
  // Names are stored as u64 length + bytes: match the length too, so "x" does not find "x_kv".
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(name)));
  const at = b.indexOf(Buffer.concat([len, Buffer.from(name)]));
  assert.ok(at >= 0, `${name} not found in the seed file`);
  return at + 8;
}

/** A copy of `seed` with `edit` applied, in the temp folder. */
function mutant(seed: string, label: string, edit: (b: Buffer) => void): string {
  const b = Buffer.from(readFileSync(seed));
  edit(b);
  const path = join(dir, `${label}.gguf`);
  writeFileSync(path, b);
  return path;
}

/** The u32 value of a u32 metadata key (the byte after the key is its type). */
function setU32Meta(b: Buffer, key: string, value: number): void {
  const at = nameAt(b, key) + Buffer.byteLength(key);
  assert.equal(b.readUInt32LE(at), 4, `${key} is not a uint32`);
  b.writeUInt32LE(value, at + 4);
}

/** Set the ggml type of a tensor in the tensor infos. */
function setTensorType(b: Buffer, name: string, type: number): void {
  let at = nameAt(b, name) + Buffer.byteLength(name);
  const nDims = b.readUInt32LE(at);
  at += 4 + 8 * nDims;
  b.writeUInt32LE(type, at);
}

function generate(model: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, "generate", "--backend", "llama.cpp", "--method", "none", "--model", model, "--prompt", "Once upon a time", "--max-tokens", "4"], {
    encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env },
  });
  return r;
}

function assertOneLineError(r: ReturnType<typeof generate>, pattern: RegExp, name: string): void {
  assert.equal(r.signal, null, `${name}: killed by ${r.signal}`);
  assert.equal(r.status, 1, `${name}: exit code ${r.status}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `${name}: one-line error expected, got:\n${r.stderr.slice(0, 2000)}`);
  assert.match(lines[0], /^specdec: error: /, name);
  assert.match(lines[0], pattern, name);
  assert.ok(lines[0].length < 400, `${name}: message of ${lines[0].length} characters`);
  assert.equal(r.stdout, "", name);
}

const CASES: { name: string; path: () => string; message: RegExp }[] = [
  {
    name: "a metadata key starting with NUL (first byte of llama.block_count set to 0)",
    path: () => mutant(STORIES, "nul-key", (b) => (b[nameAt(b, "llama.block_count")] = 0)),
    message: /metadata key "\\u0000lama\.block_count" contains a NUL byte/,
  },
  {
    name: "a weight of type I32 (blk.4.attn_v.weight of the default target, type 0 -> 26)",
    path: () => mutant(TARGET, "i32-weight", (b) => setTensorType(b, "blk.4.attn_v.weight", 26)),
    message: /tensor "blk\.4\.attn_v\.weight" has type I32, which no model weight can have/,
  },
  {
    name: "llama.context_length = 2^31 (the default target)",
    path: () => mutant(TARGET, "ctx-2e31", (b) => setU32Meta(b, "llama.context_length", 2 ** 31)),
    message: /llama\.context_length must be a positive integer, got "2147483648"/,
  },
  {
    name: "llama.attention.head_count = 0",
    path: () => mutant(STORIES, "heads-0", (b) => setU32Meta(b, "llama.attention.head_count", 0)),
    message: /head_count must be positive/,
  },
  {
    name: "llama.block_count larger than the layers in the file",
    path: () => mutant(STORIES, "blocks-6", (b) => setU32Meta(b, "llama.block_count", 6)),
    message: /block_count is 6 but the file has tensors for 5 layers/,
  },
  {
    name: "llama.embedding_length that does not match token_embd",
    path: () => mutant(STORIES, "embd-65", (b) => setU32Meta(b, "llama.embedding_length", 65)),
    message: /token_embd\.weight is \[64, 512\], expected \[65, 512\]/,
  },
  {
    name: "a tensor name with a NUL byte",
    path: () => mutant(STORIES, "nul-tensor", (b) => (b[nameAt(b, "blk.0.ffn_up.weight") + 3] = 0)),
    message: /tensor name "blk\\u00000\.ffn_up\.weight" contains a NUL byte/,
  },
  {
    name: "truncated in the tensor data",
    path: () => {
      writeFileSync(join(dir, "truncated.gguf"), readFileSync(STORIES).subarray(0, 600_000));
      return join(dir, "truncated.gguf");
    },
    message: /truncated GGUF file/,
  },
  {
    name: "garbage with a GGUF magic",
    path: () => {
      const b = Buffer.alloc(4096);
      for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
      b.write("GGUF", 0, "latin1");
      b.writeUInt32LE(3, 4);
      writeFileSync(join(dir, "garbage.gguf"), b);
      return join(dir, "garbage.gguf");
    },
    message: /absurd|truncated|runs past/,
  },
  {
    name: "tensor count 2^40",
    path: () => mutant(STORIES, "tensors-2e40", (b) => b.writeBigUInt64LE(2n ** 40n, 8)),
    message: /absurd counts in GGUF header/,
  },
  {
    name: "a file libllama refuses (a required tensor renamed: blk.0.ffn_up -> blk.0.ffn_uq)",
    path: () => mutant(STORIES, "renamed-tensor", (b) => (b[nameAt(b, "blk.0.ffn_up.weight") + "blk.0.ffn_u".length] = "q".charCodeAt(0))),
    message: /llama\.cpp could not load .*renamed-tensor\.gguf \(it refused the file/,
  },
];

for (const c of CASES) {
  test(`llama.cpp backend, bad input: ${c.name}`, { timeout: 60_000 }, () => {
    assertOneLineError(generate(c.path()), c.message, c.name);
  });
}

test("llama.cpp backend: llama.context_length = 2^30 runs in a context bounded by the default (4096), not the file's", { timeout: 60_000 }, () => {
  const path = mutant(TARGET, "ctx-2e30", (b) => setU32Meta(b, "llama.context_length", 2 ** 30));
  const r = spawnSync(process.execPath, [BIN, "generate", "--backend", "llama.cpp", "--method", "none", "--model", path, "--prompt", "Once upon a time", "--max-tokens", "4", "--json"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).tokens.length, 4);
});

test("llama.cpp backend: the model is a FIFO: refused, no hang", { timeout: 30_000 }, () => {
  const fifo = join(dir, "fifo.gguf");
  execFileSync("mkfifo", [fifo]);
  assertOneLineError(generate(fifo), /is a FIFO \(named pipe\), not a GGUF file/, "fifo");
});

test("llama.cpp backend: a missing platform package (the libraries' folder empty) is a one-line error", { timeout: 30_000 }, () => {
  const empty = join(dir, "empty-bins");
  mkdirSync(empty);
  assertOneLineError(generate(STORIES, { SPECDEC_LLAMA_BINS: empty }), /llama\.cpp libraries incomplete in .*empty-bins: missing libllama\*\.so/, "empty bins");
  assertOneLineError(generate(STORIES, { SPECDEC_LLAMA_BINS: join(dir, "no-such-folder") }), /llama\.cpp libraries not found/, "missing bins");
});

test("llama.cpp backend: the unmodified seeds run (the cases above each break one thing)", { timeout: 60_000 }, () => {
  for (const path of [STORIES, TARGET]) {
    const r = generate(path);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 0);
  }
});

// ---- found by `npm run fuzz -- --cases 100000` through the libllama binding (issue 15) ----

/** stories260K rewritten by our writer with `edit` applied to its metadata entries and tensors. */
function rewritten(label: string, edit: (metadata: GgufWriteEntry[], tensors: GgufWriteTensor[]) => { alignment?: number } | void): string {
  const f = openGguf(STORIES);
  let metadata: GgufWriteEntry[], tensors: GgufWriteTensor[];
  try {
    metadata = [...f.metadata].filter(([k]) => k !== "general.alignment").map(([key, e]) => ({ key, ...e }));
    tensors = f.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: f.readTensorData(t).slice() }));
  } finally {
    f.close();
  }
  const o = edit(metadata, tensors) ?? {};
  const path = join(dir, `${label}.gguf`);
  writeGguf(path, { metadata, tensors, alignment: o.alignment });
  return path;
}

test("llama.cpp backend: what libllama asserts on is refused first (fuzz findings: SIGABRT in ggml and llama.cpp)", { timeout: 120_000 }, () => {
  const setMeta = (m: GgufWriteEntry[], e: GgufWriteEntry) => {
    const i = m.findIndex((x) => x.key === e.key);
    if (i >= 0) m[i] = e;
    else m.push(e);
  };
  const cases: [string, string, RegExp][] = [
    // ops.cpp GGML_ASSERT(eps >= 0.0f)
    ["eps-nan", rewritten("eps-nan", (m) => setMeta(m, kv.f32("llama.attention.layer_norm_rms_epsilon", NaN))), /layer_norm_rms_epsilon must be a finite non-negative number/],
    ["eps-negative", rewritten("eps-negative", (m) => setMeta(m, kv.f32("llama.attention.layer_norm_rms_epsilon", -1))), /layer_norm_rms_epsilon must be a finite non-negative number/],
    // llama-model.cpp GGML_ASSERT(rope_scaling_type_train != UNSPECIFIED)
    ["rope-scaling", rewritten("rope-scaling", (m) => setMeta(m, kv.string("llama.rope.scaling.type", "gpt2"))), /rope\.scaling\.type is "gpt2"; llama\.cpp knows none, linear, yarn, longrope/],
    // llama-vocab.cpp GGML_ASSERT(id_to_token.size() == token_to_id.size()): a repeated token text,
    // and one that repeats only as llama.cpp reads it (a C string, cut at a NUL)
    ["token-twice", rewritten("token-twice", (m) => {
      const e = m.find((x) => x.key === "tokenizer.ggml.tokens")!;
      const tokens = [...(e.value as unknown as { items: string[] }).items];
      tokens[300] = tokens[301];
      setMeta(m, { ...e, value: { ...(e.value as object), items: tokens } as never });
    }), /token 301 ".*" appears twice in tokenizer\.ggml\.tokens$/],
    ["token-nul", rewritten("token-nul", (m) => {
      const e = m.find((x) => x.key === "tokenizer.ggml.tokens")!;
      const tokens = [...(e.value as unknown as { items: string[] }).items];
      tokens[300] = tokens[301] + "\0x";
      setMeta(m, { ...e, value: { ...(e.value as object), items: tokens } as never });
    }), /appears twice in tokenizer\.ggml\.tokens \(as llama\.cpp reads it: up to a NUL byte\)/],
    // ggml-backend.cpp GGML_ASSERT(ptr % TENSOR_ALIGNMENT == 0): a valid GGUF alignment below 32
    ["alignment-4", rewritten("alignment-4", (m) => {
      m.push(kv.string("specdec.test.pad", "x")); // a header length that is not a multiple of 32
      return { alignment: 4 };
    }), /not a multiple of 32 \(general\.alignment 4\): llama\.cpp maps tensors on 32-byte boundaries/],
  ];
  for (const [name, path, pattern] of cases) {
    if (name === "alignment-4") {
      // Only where some tensor really lands off a 32-byte boundary (else libllama takes it).
      const f = openGguf(path);
      const off = f.tensors.some((t) => t.offset % 32 !== 0);
      f.close();
      assert.ok(off, "the rewritten file has a tensor off a 32-byte boundary");
    }
    assertOneLineError(generate(path), pattern, name);
  }
});

test("llama.cpp backend: NaN weights give a one-line error, not tokens chosen from non-finite logits (fuzz finding)", { timeout: 60_000 }, () => {
  const path = rewritten("nan-weight", (_, tensors) => {
    const t = tensors.find((x) => x.name === "output_norm.weight")!;
    new DataView(t.data.buffer, t.data.byteOffset).setFloat32(0, NaN, true);
  });
  assertOneLineError(generate(path), /the model computed non-finite logits \(NaN or infinite weights, or an overflow\)/, "nan-weight");
});

test("llama.cpp backend: an architecture name with an escape byte is quoted escaped in the error (fuzz finding)", { timeout: 60_000 }, () => {
  const path = mutant(STORIES, "arch-escape", (b) => {
    const key = "general.architecture";
    const at = nameAt(b, key) + Buffer.byteLength(key) + 4 + 8; // type, string length
    b[at] = 0x1b;
  });
  const r = generate(path);
  assertOneLineError(r, /\\u001blama\.block_count is missing/, "arch-escape");
  assert.doesNotMatch(r.stderr, /\x1b/);
});
