// Mutations of a GGUF seed. Structure-aware ones use the seed's layout to hit a chosen field
// (a count, a length, a value type, a dimension, a tensor type or offset, a key's bytes, a
// value, the tensor data); blind ones flip bits, set bytes, truncate, insert, remove or
// duplicate chunks. Each returns the mutated bytes and a one-line description.
//
// In-place mutations keep every offset of the layout valid, so several can be stacked; at most
// one length-changing mutation runs, last. A length-changing mutation of the header may
// re-pad the tensor data to the alignment ("repad"), so the file stays well-formed past the
// edit and the parse reaches the checks behind it.

import { HEADER, SCALAR_BYTES, type GgufLayout, type KvLayout, type TensorLayout } from "./ggufLayout.js";
import type { CaseRng } from "./random.js";
import { encodeMetadataEntry, GgufValueType, ggmlTypeInfo, valueTypeName, type GgufWriteEntry } from "./specdec.js";

export interface Mutant {
  readonly bytes: Buffer;
  /** One entry per mutation applied, e.g. "kv 3 'llama.block_count' value u32 := 0". */
  readonly what: readonly string[];
}

/** Where a structure-aware mutation aims: anywhere, or the metadata of one family of keys. */
export interface MutationFocus {
  /** Keys to prefer (e.g. /^tokenizer\./ for the tokenizer target), chosen 3 times in 4. */
  readonly keys?: RegExp;
  /** Weight of writing non-finite values into tensor data (0 = never). */
  readonly nonFinite?: number;
}

interface Field {
  readonly at: number;
  readonly width: 4 | 8;
  readonly label: string;
  /** Values of this field's own domain, tried half the time (e.g. the ggml type ids for a tensor type). */
  readonly domain?: readonly number[];
}

// Every ggml type id gguf.cpp knows (0..39), so a tensor type may become another real type
// (I32 in a layer, a block format whose block size does not divide the row, ...).
const GGML_TYPE_IDS = Array.from({ length: 40 }, (_, i) => i);
const VALUE_TYPE_IDS = Array.from({ length: 13 }, (_, i) => i);

const q = (s: string) => JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);
const kvLabel = (kv: KvLayout) => `kv ${kv.index} ${q(kv.key)}`;
const tensorLabel = (t: TensorLayout) => `tensor ${t.index} ${q(t.name)}`;

// ---- choosing a target inside the layout ----

function pickKv(rng: CaseRng, layout: GgufLayout, focus: MutationFocus): KvLayout | undefined {
  if (layout.kvs.length === 0) return undefined;
  if (focus.keys && rng.chance(0.75)) {
    const focused = layout.kvs.filter((k) => focus.keys!.test(k.key));
    if (focused.length > 0) return rng.pick(focused);
  }
  return rng.pick(layout.kvs);
}

/** The structural fields (counts, lengths, types, dims, offsets) of the header, one kv or one tensor info. */
function pickField(rng: CaseRng, layout: GgufLayout, focus: MutationFocus): Field {
  const region = rng.weighted<"header" | "kv" | "tensor">([["header", 1], ["kv", 5], ["tensor", layout.tensors.length > 0 ? 4 : 0]]);
  if (region === "header") {
    return rng.pick<Field>([
      { at: HEADER.versionAt, width: 4, label: "header version" },
      { at: HEADER.tensorCountAt, width: 8, label: "header tensor_count" },
      { at: HEADER.kvCountAt, width: 8, label: "header kv_count" },
    ]);
  }
  if (region === "kv") {
    const kv = pickKv(rng, layout, focus)!;
    const fields: Field[] = [
      { at: kv.at, width: 8, label: `${kvLabel(kv)} key length` },
      { at: kv.typeAt, width: 4, label: `${kvLabel(kv)} value type`, domain: VALUE_TYPE_IDS },
    ];
    if (kv.type === GgufValueType.STRING) fields.push({ at: kv.valueAt, width: 8, label: `${kvLabel(kv)} string length` });
    if (kv.type === GgufValueType.ARRAY) {
      fields.push({ at: kv.valueAt, width: 4, label: `${kvLabel(kv)} array item type`, domain: VALUE_TYPE_IDS }, { at: kv.valueAt + 4, width: 8, label: `${kvLabel(kv)} array count` });
      if (kv.stringItemAt && kv.count! > 0) {
        const i = rng.int(kv.count!);
        fields.push({ at: kv.stringItemAt(i), width: 8, label: `${kvLabel(kv)} item ${i} string length` });
      }
    }
    return rng.pick(fields);
  }
  const t = rng.pick(layout.tensors);
  const d = rng.int(t.nDims);
  return rng.pick<Field>([
    { at: t.at, width: 8, label: `${tensorLabel(t)} name length` },
    { at: t.nDimsAt, width: 4, label: `${tensorLabel(t)} n_dims`, domain: [0, 1, 2, 3, 4, 5] },
    { at: t.dimsAt + 8 * d, width: 8, label: `${tensorLabel(t)} dim ${d}` },
    { at: t.typeAt, width: 4, label: `${tensorLabel(t)} ggml type`, domain: GGML_TYPE_IDS },
    { at: t.offsetAt, width: 8, label: `${tensorLabel(t)} data offset` },
  ]);
}

// ---- values ----

const MASK = { 4: 0xffffffffn, 8: 0xffffffffffffffffn } as const;

function readField(b: Buffer, f: Field): bigint {
  return f.width === 4 ? BigInt(b.readUInt32LE(f.at)) : b.readBigUInt64LE(f.at);
}

function writeField(b: Buffer, f: Field, v: bigint): void {
  const x = ((v % (MASK[f.width] + 1n)) + MASK[f.width] + 1n) & MASK[f.width];
  if (f.width === 4) b.writeUInt32LE(Number(x), f.at);
  else b.writeBigUInt64LE(x, f.at);
}

/** Boundary values for an integer field: 0, 1, -1, 2^31, 2^32-1, 2^63, ..., and near the original. */
function boundaryInteger(rng: CaseRng, width: 4 | 8, original: bigint, fileSize: number): bigint {
  return rng.pick([
    0n, 1n, 2n, 3n, -1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
    0x7fffffffffffffffn, 0x8000000000000000n, BigInt(Number.MAX_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER) + 1n,
    original + 1n, original - 1n, original * 2n, original + 32n, original << 8n,
    BigInt(fileSize), BigInt(fileSize) + 1n, BigInt(rng.int(2 ** 32)), BigInt(rng.int(256)),
  ]) & MASK[width];
}

const BOUNDARY_BYTES = [0x00, 0x01, 0x20, 0x40, 0x7f, 0x80, 0xfe, 0xff];

/** A boundary value of a metadata scalar type, written at `at` (which holds a value of that type). */
function writeBoundaryScalar(rng: CaseRng, b: Buffer, at: number, type: number): string {
  const int = (bits: number, signed: boolean) => {
    const lo = signed ? -(2n ** BigInt(bits - 1)) : 0n;
    const hi = signed ? 2n ** BigInt(bits - 1) - 1n : 2n ** BigInt(bits) - 1n;
    const v = rng.pick([0n, 1n, -1n, 2n, lo, hi, 2n ** 31n, 2n ** 32n - 1n, 2n ** 63n, 2n ** 16n, 2n ** 24n, BigInt(rng.int(2 ** 32))]);
    const mod = 2n ** BigInt(bits);
    const u = ((v % mod) + mod) % mod;
    return u;
  };
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL: {
      const v = rng.pick(BOUNDARY_BYTES);
      b.writeUInt8(v, at);
      return `0x${v.toString(16)}`;
    }
    case GgufValueType.UINT16:
    case GgufValueType.INT16: {
      const v = Number(int(16, type === GgufValueType.INT16));
      b.writeUInt16LE(v, at);
      return String(v);
    }
    case GgufValueType.UINT32:
    case GgufValueType.INT32: {
      const v = Number(int(32, type === GgufValueType.INT32));
      b.writeUInt32LE(v, at);
      return `u32 ${v}`;
    }
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      const v = int(64, type === GgufValueType.INT64);
      b.writeBigUInt64LE(v, at);
      return `u64 ${v}`;
    }
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64: {
      const v = rng.pick([NaN, Infinity, -Infinity, 0, -0, 0.5, -1, 1e-45, 3.4e38, 1e300, 2 ** 31, 2 ** 32, 2 ** 63]);
      if (type === GgufValueType.FLOAT32) b.writeFloatLE(v, at);
      else b.writeDoubleLE(v, at);
      return String(v);
    }
    default:
      throw new Error(`not a scalar type: ${type}`);
  }
}

// ---- in-place mutations ----

type InPlace = (rng: CaseRng, b: Buffer, layout: GgufLayout, focus: MutationFocus) => string | undefined;

const fieldValue: InPlace = (rng, b, layout, focus) => {
  const f = pickField(rng, layout, focus);
  const v = f.domain && rng.chance(0.5) ? BigInt(rng.pick(f.domain)) : boundaryInteger(rng, f.width, readField(b, f), layout.size);
  writeField(b, f, v);
  return `${f.label} := ${v}`;
};

const fieldByte: InPlace = (rng, b, layout, focus) => {
  const f = pickField(rng, layout, focus);
  const k = rng.weighted([[0, 4], [1, 2], [2, 2], [3, 1], [f.width - 1, 1]]);
  const v = rng.chance(0.8) ? rng.pick(BOUNDARY_BYTES) : rng.int(256);
  b[f.at + k] = v;
  return `${f.label} byte ${k} := 0x${v.toString(16).padStart(2, "0")}`;
};

const scalarValue: InPlace = (rng, b, layout, focus) => {
  const kv = pickKv(rng, layout, focus);
  if (!kv) return undefined;
  if (kv.type === GgufValueType.ARRAY) {
    const size = SCALAR_BYTES[kv.itemType!];
    if (size === undefined || kv.count === 0) return undefined;
    const i = rng.chance(0.3) ? 0 : rng.int(kv.count!);
    return `${kvLabel(kv)} item ${i} := ${writeBoundaryScalar(rng, b, kv.itemsAt! + i * size, kv.itemType!)}`;
  }
  if (SCALAR_BYTES[kv.type] === undefined) return undefined;
  return `${kvLabel(kv)} value := ${writeBoundaryScalar(rng, b, kv.valueAt, kv.type)}`;
};

const retype: InPlace = (rng, b, layout, focus) => {
  const kv = pickKv(rng, layout, focus);
  if (!kv) return undefined;
  const arrayItems = kv.type === GgufValueType.ARRAY && rng.chance(0.4);
  const at = arrayItems ? kv.valueAt : kv.typeAt;
  const t = rng.chance(0.9) ? rng.int(13) : rng.pick([13, 255, 0x7fffffff, 0xffffffff]);
  b.writeUInt32LE(t, at);
  return `${kvLabel(kv)} ${arrayItems ? "array item type" : "value type"} := ${valueTypeName(t)}`;
};

/** Bytes of a key, a string value, a string array item or a tensor name: NUL, newline, escape, invalid UTF-8. */
const stringBytes: InPlace = (rng, b, layout, focus) => {
  const spans: { at: number; len: number; label: string }[] = [];
  const kv = pickKv(rng, layout, focus);
  if (kv) {
    spans.push({ at: kv.at + 8, len: kv.keyBytes, label: `${kvLabel(kv)} key` });
    if (kv.type === GgufValueType.STRING) spans.push({ at: kv.valueAt + 8, len: Number(b.readBigUInt64LE(kv.valueAt)), label: `${kvLabel(kv)} string` });
    if (kv.stringItemAt && kv.count! > 0) {
      const i = rng.int(kv.count!);
      const at = kv.stringItemAt(i);
      spans.push({ at: at + 8, len: Number(b.readBigUInt64LE(at)), label: `${kvLabel(kv)} item ${i}` });
    }
  }
  if (layout.tensors.length > 0) {
    const t = rng.pick(layout.tensors);
    spans.push({ at: t.at + 8, len: t.nDimsAt - t.at - 8, label: `${tensorLabel(t)} name` });
  }
  const s = rng.pick(spans.filter((x) => x.len > 0));
  if (!s) return undefined;
  const k = rng.chance(0.4) ? 0 : rng.int(s.len);
  const v = rng.pick([0x00, 0x0a, 0x0d, 0x1b, 0x2e, 0x20, 0x7f, 0x80, 0xc3, 0xe2, 0xef, 0xff]);
  b[s.at + k] = v;
  return `${s.label} byte ${k} := 0x${v.toString(16).padStart(2, "0")}`;
};

/** A NaN or an infinity written into one element of a float tensor (or one block scale). */
const nonFiniteData: InPlace = (rng, b, layout) => {
  const floats = layout.tensors.filter((t) => t.byteLength > 0 && ggmlTypeInfo(t.type) !== undefined);
  if (floats.length === 0) return undefined;
  const t = rng.pick(floats);
  const info = ggmlTypeInfo(t.type)!;
  const blocks = t.byteLength / info.typeSize;
  const block = rng.chance(0.3) ? 0 : rng.int(blocks);
  const at = t.dataAt + block * info.typeSize;
  const kind = rng.pick(["NaN", "+Inf", "-Inf"] as const);
  // F32: the element; F16/BF16: the element; block formats: the block's leading f16 scale.
  if (info.name === "F32") b.writeFloatLE(kind === "NaN" ? NaN : kind === "+Inf" ? Infinity : -Infinity, at);
  else if (info.name === "BF16") b.writeUInt16LE(kind === "NaN" ? 0x7fc0 : kind === "+Inf" ? 0x7f80 : 0xff80, at);
  else if (info.name === "F64") b.writeDoubleLE(kind === "NaN" ? NaN : Infinity, at);
  else if (info.typeSize >= 2 && !info.name.startsWith("I")) b.writeUInt16LE(kind === "NaN" ? 0x7e00 : kind === "+Inf" ? 0x7c00 : 0xfc00, at);
  else return undefined;
  return `${tensorLabel(t)} data element ${block * info.blockSize} := ${kind}`;
};

const bitFlips: InPlace = (rng, b, layout) => {
  const n = rng.weighted([[1, 5], [2, 2], [4, 1], [8, 1]]);
  const flips: string[] = [];
  for (let i = 0; i < n; i++) {
    const at = rng.chance(0.8) ? rng.int(layout.headerEnd) : rng.int(b.length);
    const bit = rng.int(8);
    b[at] ^= 1 << bit;
    flips.push(`${at}.${bit}`);
  }
  return `bit flips at ${flips.join(" ")}`;
};

const byteSet: InPlace = (rng, b, layout) => {
  const at = rng.chance(0.85) ? rng.int(layout.headerEnd) : rng.int(b.length);
  const v = rng.pick(BOUNDARY_BYTES);
  b[at] = v;
  return `byte ${at} := 0x${v.toString(16).padStart(2, "0")}`;
};

// ---- length-changing mutations ----

type Resize = (rng: CaseRng, b: Buffer, layout: GgufLayout) => { bytes: Buffer; what: string } | undefined;

/** The header part `header` followed by the original tensor data, re-aligned when `repad`. */
function withHeader(b: Buffer, layout: GgufLayout, header: Buffer, repad: boolean): Buffer {
  if (!repad) return Buffer.concat([header, b.subarray(layout.headerEnd)]);
  const padded = Math.ceil(header.length / layout.alignment) * layout.alignment;
  return Buffer.concat([header, Buffer.alloc(padded - header.length), b.subarray(layout.dataOffset)]);
}

function bumpCount(header: Buffer, at: number, by: number): void {
  // A count already mutated to 2^64 - 1 wraps, as a u64 does.
  header.writeBigUInt64LE((header.readBigUInt64LE(at) + BigInt(by)) & 0xffff_ffff_ffff_ffffn, at);
}

const truncate: Resize = (rng, b, layout) => {
  const marks = [layout.headerEnd, layout.dataOffset, ...layout.kvs.flatMap((k) => [k.at, k.typeAt, k.valueAt]), ...layout.tensors.flatMap((t) => [t.at, t.typeAt, t.dataAt, t.dataAt + t.byteLength - 1])];
  const len = rng.weighted<() => number>([
    [() => rng.pick(marks) + rng.range(-2, 2), 4],
    [() => rng.int(layout.headerEnd), 4],
    [() => rng.int(b.length), 2],
  ])();
  const n = Math.max(0, Math.min(b.length - 1, len));
  return { bytes: Buffer.from(b.subarray(0, n)), what: `truncated to ${n} of ${b.length} bytes` };
};

/** Remove or duplicate one whole kv entry or tensor info, fixing the count or not. */
function entryEdit(mode: "remove" | "duplicate"): Resize {
  return (rng, b, layout) => {
    const useKv = layout.tensors.length === 0 || rng.chance(0.6);
    const entry = useKv ? rng.pick(layout.kvs) : rng.pick(layout.tensors);
    if (!entry) return undefined;
    const chunk = b.subarray(entry.at, entry.end);
    const header = Buffer.concat(mode === "remove" ? [b.subarray(0, entry.at), b.subarray(entry.end, layout.headerEnd)] : [b.subarray(0, entry.end), chunk, b.subarray(entry.end, layout.headerEnd)]);
    const fix = rng.chance(0.7);
    if (fix) bumpCount(header, useKv ? HEADER.kvCountAt : HEADER.tensorCountAt, mode === "remove" ? -1 : 1);
    const repad = rng.chance(0.7);
    const label = useKv ? kvLabel(entry as KvLayout) : tensorLabel(entry as TensorLayout);
    return { bytes: withHeader(b, layout, header, repad), what: `${mode} ${label}${fix ? ", count fixed" : ""}${repad ? ", data re-aligned" : ""}` };
  };
}

/** Remove or duplicate a random chunk of bytes (mostly in the header). */
function chunkEdit(mode: "remove" | "duplicate"): Resize {
  return (rng, b, layout) => {
    const from = rng.chance(0.85) ? rng.int(layout.headerEnd) : rng.int(b.length);
    const len = Math.min(b.length - from, rng.weighted([[rng.range(1, 8), 5], [rng.range(9, 64), 3], [rng.range(65, 4096), 1]]));
    const bytes = mode === "remove" ? Buffer.concat([b.subarray(0, from), b.subarray(from + len)]) : Buffer.concat([b.subarray(0, from + len), b.subarray(from, from + len), b.subarray(from + len)]);
    return { bytes, what: `${mode} bytes ${from}..${from + len}` };
  };
}

const insertBytes: Resize = (rng, b, layout) => {
  const at = rng.int(layout.headerEnd);
  const n = rng.range(1, 16);
  const junk = Buffer.alloc(n);
  for (let i = 0; i < n; i++) junk[i] = rng.chance(0.5) ? rng.pick(BOUNDARY_BYTES) : rng.int(256);
  return { bytes: Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]), what: `insert ${n} bytes at ${at}` };
};

/** A metadata entry of `type` holding `v`, wrapped or converted to what the type can hold. */
function entryOf(key: string, type: number, v: number | bigint): GgufWriteEntry {
  const bits: Record<number, [number, boolean]> = { 0: [8, false], 1: [8, true], 2: [16, false], 3: [16, true], 4: [32, false], 5: [32, true], 10: [64, false], 11: [64, true] };
  if (type in bits) {
    const [n, signed] = bits[type];
    const mod = 1n << BigInt(n);
    let x = ((BigInt(typeof v === "bigint" ? v : Math.trunc(Number.isFinite(v) ? v : 0)) % mod) + mod) % mod;
    if (signed && x >= mod / 2n) x -= mod;
    return { key, type, value: n === 64 ? x : Number(x) };
  }
  if (type === GgufValueType.BOOL) return { key, type, value: Number(v) !== 0 };
  if (type === GgufValueType.STRING) return { key, type, value: String(v) };
  return { key, type, value: Number(v) };
}

/** Append a new metadata entry (count fixed, data re-aligned): odd alignments, duplicate or odd keys, odd values. */
const addKv: Resize = (rng, b, layout) => {
  const arch = layout.kvs.find((k) => k.key === "general.architecture");
  const archName = arch ? b.toString("utf8", arch.valueAt + 8, arch.end) : "llama";
  const existing = layout.kvs.length > 0 ? rng.pick(layout.kvs).key : "general.name";
  const big = rng.pick([0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x8000000000000000n, 0xffffffffffffffffn]);
  const entry = rng.weighted<() => GgufWriteEntry>([
    [() => rng.pick<GgufWriteEntry>([
      { key: "general.alignment", type: GgufValueType.FLOAT32, value: 0.5 },
      { key: "general.alignment", type: GgufValueType.FLOAT32, value: 32 },
      { key: "general.alignment", type: GgufValueType.UINT32, value: rng.pick([0, 1, 3, 16, 64, 0x80000000]) },
      { key: "general.alignment", type: GgufValueType.UINT64, value: 32n },
      { key: "general.alignment", type: GgufValueType.INT32, value: -32 },
      { key: "general.alignment", type: GgufValueType.UINT8, value: 32 },
      { key: "general.alignment", type: GgufValueType.STRING, value: "32" },
      { key: "general.alignment", type: GgufValueType.BOOL, value: true },
    ]), 3],
    [() => entryOf(existing, rng.pick([GgufValueType.UINT32, GgufValueType.STRING, GgufValueType.FLOAT32]), rng.int(2 ** 32)), 2],
    [() => entryOf(rng.pick(["", "\0", "\0llama.block_count", "a\nb", "\x1b[31mred", "x".repeat(rng.pick([64, 1000, 70000])), "\ufeffgeneral.name"]), GgufValueType.UINT32, 1), 2],
    [() => entryOf(`${archName}.${rng.pick(["context_length", "block_count", "embedding_length", "feed_forward_length", "attention.head_count", "attention.head_count_kv", "vocab_size", "rope.dimension_count"])}`, rng.pick([GgufValueType.UINT64, GgufValueType.UINT32, GgufValueType.INT32]), big), 2],
    [() => entryOf(`tokenizer.ggml.${rng.pick(["bos_token_id", "eos_token_id", "unknown_token_id", "eot_token_id", "seperator_token_id", "padding_token_id"])}`, rng.pick([GgufValueType.INT32, GgufValueType.UINT32, GgufValueType.UINT64, GgufValueType.FLOAT32]), rng.pick([-1, 0, 2 ** 31, 1e9, 0.5])), 2],
    [() => entryOf(`tokenizer.ggml.${rng.pick(["add_bos_token", "add_eos_token", "add_space_prefix", "add_sep_token"])}`, rng.pick([GgufValueType.BOOL, GgufValueType.UINT32, GgufValueType.STRING]), 1), 1],
    [() => ({ key: rng.pick(["tokenizer.ggml.pre", "tokenizer.ggml.model", "general.architecture", `${archName}.rope.scaling.type`]), type: GgufValueType.STRING, value: rng.pick(["", "llama", "gpt2", "bert", "t5", "none", "yarn", "linear", "qwen2", "\0", "x".repeat(5000)]) }), 2],
    [() => entryOf(`${archName}.${rng.pick(["rope.freq_base", "attention.layer_norm_rms_epsilon", "rope.scaling.factor"])}`, GgufValueType.FLOAT32, rng.pick([NaN, Infinity, -1, 0, 1e-45, 3e38])), 1],
  ])();
  // The new entry goes at a random place among the entries.
  const before = layout.kvs.length === 0 ? HEADER.firstKvAt : rng.chance(0.5) ? layout.kvs[layout.kvs.length - 1].end : rng.pick(layout.kvs).at;
  const header = Buffer.concat([b.subarray(0, before), encodeMetadataEntry(entry), b.subarray(before, layout.headerEnd)]);
  bumpCount(header, HEADER.kvCountAt, 1);
  const shown = typeof entry.value === "string" ? q(entry.value) : String(entry.value);
  return { bytes: withHeader(b, layout, header, true), what: `add kv ${q(entry.key)} ${valueTypeName(entry.type)} ${shown} at ${before}` };
};

// ---- the mix ----

/** Apply 1-3 mutations to a copy of `seed`. */
export function mutate(rng: CaseRng, seed: Uint8Array, layout: GgufLayout, focus: MutationFocus = {}): Mutant {
  const b = Buffer.from(seed);
  const what: string[] = [];
  const inPlace: (readonly [InPlace, number])[] = [
    [fieldValue, 6],
    [fieldByte, 5],
    [scalarValue, 5],
    [retype, 2],
    [stringBytes, 3],
    [bitFlips, 3],
    [byteSet, 2],
    [nonFiniteData, focus.nonFinite ?? 0],
  ];
  const resizes: (readonly [Resize, number])[] = [
    [truncate, 3],
    [entryEdit("remove"), 2],
    [entryEdit("duplicate"), 2],
    [chunkEdit("remove"), 1],
    [chunkEdit("duplicate"), 1],
    [insertBytes, 1],
    [addKv, 4],
  ];
  const plan = rng.weighted<[number, boolean]>([[[1, false], 6], [[0, true], 3], [[2, false], 1], [[1, true], 1], [[3, false], 0.5]]);
  for (let i = 0; i < plan[0]; i++) {
    const w = rng.weighted(inPlace)(rng, b, layout, focus);
    if (w !== undefined) what.push(w);
  }
  let bytes: Buffer = b;
  if (plan[1] || what.length === 0) {
    const r = rng.weighted(resizes)(rng, b, layout);
    if (r) {
      bytes = r.bytes;
      what.push(r.what);
    }
  }
  return { bytes, what };
}
