// What a model file must satisfy before libllama sees it. llama.cpp's loader reports most bad
// files cleanly, but not all, and a crash inside a native call kills the whole process. Crashes
// these checks prevent (measured with this release, test/llamaCppBadInput.test.ts):
//   - an integer type for a weight (I32 for blk.4.attn_v.weight): SIGSEGV in the first pass;
//   - an absurd `<arch>.context_length` (2^31): a context that size never finishes allocating
//     (8.3 GB and growing); the context we create is bounded by the request, the model and
//     memory instead (contextBound), and a length past int32 is refused;
//   - a metadata key that is empty or holds a NUL byte: through node-llama-cpp it reached
//     GGML_ASSERT(!key.empty()) (SIGABRT); libllama alone refuses it, but the key cannot be
//     meant, so it is refused here with a clear message.
// The rest (names, head counts, layer counts, vocabulary arrays, the embedding's shape) are the
// facts the binding relies on, checked so the messages name the problem. The file is first
// read by our own GGUF reader (truncated, garbage and absurd headers).

import { statSync } from "node:fs";
import { totalmem } from "node:os";
import { SpecdecError } from "../../errors.js";
import { GgmlType } from "../../gguf/ggmlTypes.js";
import { describeModelFile, type ModelFileInfo } from "../../gguf/modelInfo.js";
import { GgufValueType, metaArray, metaValue, notAFile, openGguf, type GgufFile } from "../../gguf/reader.js";

/** What the binding needs to know of a validated file. */
export interface CheckedModelFile extends ModelFileInfo {
  readonly blockCount: number;
  readonly embeddingLength: number;
  /** Bytes of K and V cache per token of context (all layers) at 2 bytes per value. */
  readonly kvBytesPerTokenF16: number;
  /** Whether the file has its own output.weight (else the output projection is token_embd's). */
  readonly hasOutputWeight: boolean;
}

// GGML_MAX_NAME in ggml.h: tensor names are stored in a 64-byte field, NUL included.
const GGML_MAX_NAME = 64;
// LLAMA_MAX_LAYERS in llama-hparams.h.
const LLAMA_MAX_LAYERS = 512;
// Types a weight may be stored in: floats and the block formats (not integers, F64, or the
// Q8_1 / Q8_K formats that only hold rounded activations).
const NOT_WEIGHT_TYPES = new Set<number>([GgmlType.I8, GgmlType.I16, GgmlType.I32, GgmlType.I64, GgmlType.F64, GgmlType.Q8_1, GgmlType.Q8_K]);

/** A key or name from a file as a message shows it unquoted: escaped, at most `max` characters. */
function printable(s: string, max = 60): string {
  return quoted(s, max).slice(1, -1);
}

/** A short, printable excerpt of a name or key from a file (never its raw bytes). */
export function quoted(s: string, max = 40): string {
  const cut = s.length > max ? s.slice(0, max) + "…" : s;
  return JSON.stringify(cut);
}

/** Validate a model file for libllama and describe it. Throws SpecdecError (one line) on anything it cannot take. */
export function checkModelFile(path: string): CheckedModelFile {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new SpecdecError(`model file not found: ${path}`);
  }
  const what = notAFile(st);
  if (what) throw new SpecdecError(`${path} is ${what}, not a GGUF file`);
  const f = openGguf(path);
  try {
    const info = describeModelFile(f);
    checkNames(f);
    checkWeightTypes(f);
    return { ...info, ...checkHyperParameters(f, info) };
  } finally {
    f.close();
  }
}

function checkNames(f: GgufFile): void {
  for (const key of f.metadata.keys()) {
    if (key.length === 0) throw new SpecdecError(`${f.path}: a metadata key is empty`);
    if (key.includes("\0")) throw new SpecdecError(`${f.path}: metadata key ${quoted(key)} contains a NUL byte`);
  }
  const al = f.metadata.get("general.alignment");
  if (al && al.type !== GgufValueType.UINT32) throw new SpecdecError(`${f.path}: general.alignment must be a uint32`);
  const seen = new Set<string>();
  for (const t of f.tensors) {
    if (t.name.length === 0) throw new SpecdecError(`${f.path}: a tensor has an empty name`);
    if (t.name.includes("\0")) throw new SpecdecError(`${f.path}: tensor name ${quoted(t.name)} contains a NUL byte`);
    if (Buffer.byteLength(t.name) >= GGML_MAX_NAME) throw new SpecdecError(`${f.path}: tensor name ${quoted(t.name)} is longer than ${GGML_MAX_NAME - 1} bytes`);
    if (seen.has(t.name)) throw new SpecdecError(`${f.path}: tensor ${quoted(t.name)} appears twice`);
    seen.add(t.name);
  }
}

// TENSOR_ALIGNMENT in ggml-backend-impl.h: a mapped tensor's data pointer must be a multiple of it.
const TENSOR_ALIGNMENT = 32;
// llama-model.cpp LLAMA_ROPE_SCALING_TYPES: any other name is a failed GGML_ASSERT.
const ROPE_SCALING_TYPES = new Set(["none", "linear", "yarn", "longrope"]);

function checkWeightTypes(f: GgufFile): void {
  for (const t of f.tensors) {
    if (t.offset % TENSOR_ALIGNMENT !== 0)
      throw new SpecdecError(`${f.path}: tensor ${quoted(t.name)} data starts at byte ${t.offset}, not a multiple of ${TENSOR_ALIGNMENT} (general.alignment ${f.alignment}): llama.cpp maps tensors on ${TENSOR_ALIGNMENT}-byte boundaries`);
    if ((t.name.endsWith(".weight") || t.name.endsWith(".bias")) && NOT_WEIGHT_TYPES.has(t.type))
      throw new SpecdecError(`${f.path}: tensor ${quoted(t.name)} has type ${typeName(t.type)}, which no model weight can have`);
  }
}

/** A positive integer hyper-parameter (or per-layer array of them), or undefined when absent. */
function positiveInts(f: GgufFile, key: string, allowZero = false): number[] | undefined {
  const v = metaValue(f, key);
  if (v === undefined) return undefined;
  const items = typeof v === "object" && v !== null && "items" in v ? v.items : [v];
  const out: number[] = [];
  for (const x of items) {
    const n = typeof x === "bigint" ? Number(x) : x;
    if (typeof n !== "number" || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 0x7fffffff)
      throw new SpecdecError(`${f.path}: ${printable(key)} must be ${allowZero ? "a non-negative" : "a positive"} integer, got ${quoted(String(x))}`);
    out.push(n);
  }
  return out;
}

/** A float hyper-parameter that must be finite and non-negative, when present. */
function nonNegativeFloat(f: GgufFile, key: string): void {
  const v = metaValue(f, key);
  if (v === undefined) return;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) throw new SpecdecError(`${f.path}: ${printable(key)} must be a finite non-negative number, got ${quoted(String(typeof v === "object" ? "an array" : v))}`);
}

function checkHyperParameters(f: GgufFile, info: ModelFileInfo): Omit<CheckedModelFile, Exclude<keyof ModelFileInfo, "contextLength">> {
  const arch = printable(info.architecture); // as it appears in keys
  const key = (k: string) => `${info.architecture}.${k}`;
  const tensor = (name: string) => f.tensors.find((t) => t.name === name);
  const embd = tensor("token_embd.weight");
  const nVocab = info.vocab.tokens.length;

  for (const key of ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"]) {
    const a = metaArray(f, key);
    if (a && a.length !== nVocab) throw new SpecdecError(`${f.path}: ${key} has ${a.length} entries for ${nVocab} tokens`);
  }
  // llama-vocab.cpp maps token texts to ids and asserts both ways are the same size; it reads
  // each text as a C string, so a NUL ends it there.
  const texts = new Map<string, boolean>(); // as llama.cpp reads it → whether a NUL cut it
  for (const [id, token] of info.vocab.tokens.entries()) {
    const t = token.split("\0")[0];
    const cut = t !== token;
    if (texts.has(t)) throw new SpecdecError(`${f.path}: token ${id} ${quoted(t)} appears twice in tokenizer.ggml.tokens${cut || texts.get(t) ? " (as llama.cpp reads it: up to a NUL byte)" : ""}`);
    texts.set(t, cut);
  }
  // ggml's norms assert a non-negative epsilon; an unknown RoPE scaling name is an assert too.
  nonNegativeFloat(f, key("attention.layer_norm_rms_epsilon"));
  nonNegativeFloat(f, key("attention.layer_norm_epsilon"));
  const scaling = metaValue(f, key("rope.scaling.type"));
  if (scaling !== undefined && (typeof scaling !== "string" || !ROPE_SCALING_TYPES.has(scaling)))
    throw new SpecdecError(`${f.path}: ${arch}.rope.scaling.type is ${quoted(String(typeof scaling === "object" ? "an array" : scaling))}; llama.cpp knows ${[...ROPE_SCALING_TYPES].join(", ")}`);

  const ctx = positiveInts(f, key("context_length"));
  const blocks = positiveInts(f, key("block_count"));
  if (!blocks || blocks.length !== 1) throw new SpecdecError(`${f.path}: ${arch}.block_count is missing`);
  const blockCount = blocks[0];
  if (blockCount > LLAMA_MAX_LAYERS) throw new SpecdecError(`${f.path}: ${arch}.block_count ${blockCount} exceeds llama.cpp's limit of ${LLAMA_MAX_LAYERS} layers`);
  let maxBlock = -1;
  for (const t of f.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) maxBlock = Math.max(maxBlock, Number(m[1]));
  }
  if (maxBlock + 1 !== blockCount) throw new SpecdecError(`${f.path}: ${arch}.block_count is ${blockCount} but the file has tensors for ${maxBlock + 1} layers`);

  const embdLen = positiveInts(f, key("embedding_length"));
  if (!embdLen || embdLen.length !== 1) throw new SpecdecError(`${f.path}: ${arch}.embedding_length is missing`);
  const nEmbd = embdLen[0];
  if (embd && (embd.dims[0] !== nEmbd || embd.dims[1] !== nVocab))
    throw new SpecdecError(`${f.path}: token_embd.weight is [${embd.dims.join(", ")}], expected [${nEmbd}, ${nVocab}] (${arch}.embedding_length, vocabulary size)`);

  const heads = positiveInts(f, key("attention.head_count"), true);
  const kvHeads = positiveInts(f, key("attention.head_count_kv"), true);
  for (const [name, arr] of [["head_count", heads], ["head_count_kv", kvHeads]] as const) {
    if (arr && arr.length !== 1 && arr.length !== blockCount) throw new SpecdecError(`${f.path}: ${arch}.attention.${name} has ${arr.length} entries for ${blockCount} layers`);
  }
  const keyLen = positiveInts(f, key("attention.key_length"))?.[0];
  const valueLen = positiveInts(f, key("attention.value_length"))?.[0];
  let kvPerToken = 0;
  for (let l = 0; l < blockCount; l++) {
    const h = heads?.[heads.length === 1 ? 0 : l] ?? 0;
    const hkv = kvHeads?.[kvHeads.length === 1 ? 0 : l] ?? h;
    // A layer without attention (head_count 0 in a per-layer array) is allowed; one with heads
    // needs whole heads and a KV head count that divides them.
    if (h === 0) {
      if (!heads || heads.length === 1) throw new SpecdecError(`${f.path}: ${arch}.attention.head_count must be positive`);
      continue;
    }
    if (hkv === 0 || h % hkv !== 0) throw new SpecdecError(`${f.path}: ${arch}.attention.head_count_kv ${hkv} does not divide head_count ${h}`);
    if (keyLen === undefined && nEmbd % h !== 0) throw new SpecdecError(`${f.path}: ${arch}.embedding_length ${nEmbd} is not a multiple of head_count ${h}`);
    kvPerToken += hkv * ((keyLen ?? nEmbd / h) + (valueLen ?? keyLen ?? nEmbd / h));
  }
  return {
    contextLength: ctx?.[0],
    blockCount,
    embeddingLength: nEmbd,
    kvBytesPerTokenF16: 2 * kvPerToken,
    hasOutputWeight: tensor("output.weight") !== undefined,
  };
}

/**
 * Most tokens a context may hold: the request (default `fallback`), at most the model's own
 * context length, and refused when its KV cache would not fit in memory.
 */
export function contextBound(file: CheckedModelFile, requested: number | undefined, kvBytesPerValue: number, fallback = 4096): number {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) throw new SpecdecError(`context size must be a positive integer, got ${requested}`);
  const n = Math.min(requested ?? fallback, file.contextLength ?? Infinity);
  // Half the machine's memory for the KV cache at most: past that the allocation (or the
  // system) fails in ways we cannot report.
  const bytes = n * file.kvBytesPerTokenF16 * (kvBytesPerValue / 2);
  const limit = totalmem() / 2;
  if (bytes > limit)
    throw new SpecdecError(`a context of ${n} tokens needs ${(bytes / 2 ** 30).toFixed(1)} GiB of KV cache, more than half this machine's memory: pass a smaller context size`);
  if (n > 0x7fffffff - 256) throw new SpecdecError(`context size ${n} is too large`);
  return n;
}

function typeName(id: number): string {
  return Object.entries(GgmlType).find(([, v]) => v === id)?.[0] ?? String(id);
}
