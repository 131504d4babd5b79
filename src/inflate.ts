// Heavy twins: the same function as a small model, with the weight traffic of a large one.
// Every feed-forward layer gets extra units whose weights are all zero (gate and up rows, down
// columns): silu(0) · 0 = 0 and adding exact zeros changes no sum, so the twin computes what the
// original quantized the same way computes — greedy tokens identical — while each pass reads
// the weights of, say, a 100M-parameter model. Attention and the KV cache stay the small
// model's. A benchmark fixture: speculation's timing becomes realistic on machines without a
// real large model.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { OptionError, SpecdecError } from "./errors.js";
import { readHParams } from "./engine/hparams.js";
import { dequantizeRow, isSupportedType, quantizeRow } from "./engine/quant/index.js";
import { GgmlType, ggmlTypeInfo } from "./gguf/ggmlTypes.js";
import { metaString, openGguf, type GgufFile, type GgufTensorInfo } from "./gguf/reader.js";
import { kv, writeGguf, type GgufWriteEntry, type GgufWriteTensor } from "./gguf/writer.js";

export const INFLATE_TYPES = { q8_0: GgmlType.Q8_0, q4_0: GgmlType.Q4_0, f16: GgmlType.F16, f32: GgmlType.F32 } as const;
export type InflateType = keyof typeof INFLATE_TYPES;

/** llama.cpp's general.file_type for each (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0). */
const FILE_TYPE: Record<InflateType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

export interface InflateOptions {
  /** Feed-forward length of the twin (at least the original's). */
  ffn?: number;
  /** Or: the twin's parameter count; the feed-forward length is chosen to reach it. */
  params?: number;
  /** Storage type of every matrix (norms and biases stay F32). Default q8_0. */
  type?: InflateType;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean;
  /** Called as tensors are written: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface InflateResult {
  readonly architecture: string;
  readonly ffnFrom: number;
  readonly ffnTo: number;
  readonly paramsFrom: number;
  readonly params: number;
  readonly bytes: number;
}

/** "100M", "1.5B", "250k", "1e8" → a count. */
export function parseParamCount(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kKmMbB]?)\s*$/.exec(text);
  if (!m) throw new SpecdecError(`parameter count '${text}' is not a number like 100M, 1.5B or 250k`);
  const n = Number(m[1]) * ({ "": 1, k: 1e3, m: 1e6, b: 1e9 } as Record<string, number>)[m[2].toLowerCase()];
  if (!Number.isFinite(n) || n < 1) throw new SpecdecError(`parameter count '${text}' must be positive`);
  return Math.round(n);
}

const elements = (t: GgufTensorInfo) => t.dims.reduce((a, b) => a * b, 1);

/** Write the heavy twin of `input` to `output`. */
export function inflateModel(input: string, output: string, options: InflateOptions): InflateResult {
  if ((options.ffn === undefined) === (options.params === undefined)) throw new OptionError("inflate needs exactly one of {ffn} and {params}");
  const typeName = options.type ?? "q8_0";
  const type = INFLATE_TYPES[typeName];
  if (type === undefined) throw new SpecdecError(`unknown type '${typeName}' (choose one of: ${Object.keys(INFLATE_TYPES).join(", ")})`);
  const block = ggmlTypeInfo(type)!.blockSize;
  const f = openGguf(input);
  try {
    const hp = readHParams(f); // llama and qwen2 only: the architectures whose FFN we know
    const { dim, hiddenDim: ffn0, nLayers } = hp;
    const paramsFrom = f.tensors.reduce((s, t) => s + elements(t), 0);
    let ffn = options.ffn;
    if (options.params !== undefined) {
      const extra = options.params - paramsFrom;
      if (extra < 0) throw new SpecdecError(`${input} already has ${paramsFrom} parameters, more than ${options.params}`);
      ffn = ffn0 + Math.ceil(extra / (3 * dim * nLayers) / block) * block;
    }
    if (!Number.isInteger(ffn) || ffn! < ffn0) throw new SpecdecError(`the twin's feed-forward length must be an integer >= the model's own ${ffn0}, got ${ffn}`);
    if (ffn! > 1 << 22) throw new SpecdecError(`a feed-forward length of ${ffn} is absurd`);
    for (const [what, n] of [["embedding length", dim], ["feed-forward length", ffn0]] as const)
      if (n % block !== 0) throw new SpecdecError(`${input}: its ${what} ${n} is not a multiple of the ${typeName} block (${block}): use --type f16 or f32`);
    if (ffn! % block !== 0) throw new SpecdecError(`feed-forward length ${ffn} is not a multiple of the ${typeName} block (${block})`);
    for (const t of f.tensors) if (!isSupportedType(t.type)) throw new SpecdecError(`${input}: tensor ${t.name} has type ${ggmlTypeInfo(t.type)?.name ?? t.type}, which inflate cannot read`);

    const total = f.tensors.length;
    const tensors: GgufWriteTensor[] = [];
    let params = 0;
    for (const [i, t] of f.tensors.entries()) {
      const padded = padTensor(f, t, ffn0, ffn!, nLayers);
      params += padded.rows * padded.cols;
      const keepF32 = t.dims.length === 1; // norms and biases
      const outType = keepF32 ? GgmlType.F32 : type;
      tensors.push({ name: t.name, dims: t.dims.length === 1 ? [padded.cols] : [padded.cols, padded.rows], type: outType, data: encode(padded.values, padded.rows, padded.cols, outType) });
      options.onProgress?.(i + 1, total);
    }
    const arch = hp.arch;
    const name = metaString(f, "general.name") ?? basename(input);
    const millions = (n: number) => `${(n / 1e6).toFixed(1)}M`;
    const metadata: GgufWriteEntry[] = [];
    for (const [key, entry] of f.metadata) {
      if (key === "general.alignment" || key === "specdec.inflated_from") continue;
      if (key === `${arch}.feed_forward_length`) metadata.push(kv.u32(key, ffn!));
      else if (key === "general.name") metadata.push(kv.string(key, `${name} (heavy twin, ${millions(params)} parameters)`));
      else if (key === "general.file_type") metadata.push(kv.u32(key, FILE_TYPE[typeName]));
      else metadata.push({ key, type: entry.type, value: entry.value });
    }
    if (!f.metadata.has("general.name")) metadata.push(kv.string("general.name", `${name} (heavy twin, ${millions(params)} parameters)`));
    if (!f.metadata.has("general.file_type")) metadata.push(kv.u32("general.file_type", FILE_TYPE[typeName]));
    metadata.push(kv.string("specdec.inflated_from", `${basename(input)}: feed-forward ${ffn0} -> ${ffn} with zero-valued units, ${paramsFrom} -> ${params} parameters, ${typeName}; the same function as the original in ${typeName}`));
    writeGguf(output, { metadata, tensors, overwrite: options.overwrite });
    return { architecture: arch, ffnFrom: ffn0, ffnTo: ffn!, paramsFrom, params, bytes: tensors.reduce((s, t) => s + t.data.byteLength, 0) };
  } finally {
    f.close();
  }
}

/** A tensor as f32 (rows, cols), the feed-forward ones padded with zeros to `ffn`. */
function padTensor(f: GgufFile, t: GgufTensorInfo, ffn0: number, ffn: number, nLayers: number): { values: Float32Array; rows: number; cols: number } {
  const cols = t.dims[0], rows = t.dims.length === 1 ? 1 : t.dims[1];
  if (t.dims.length > 2) throw new SpecdecError(`${f.path}: tensor ${t.name} has ${t.dims.length} dimensions`);
  const data = f.readTensorData(t);
  const rowBytes = data.byteLength / rows;
  const m = /^blk\.(\d+)\.ffn_(gate|up|down)\.weight$/.exec(t.name);
  const layer = m ? Number(m[1]) : -1;
  if (!m || layer >= nLayers) {
    const values = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) dequantizeRow(t.type, data, r * rowBytes, values, cols, r * cols);
    return { values, rows, cols };
  }
  if (m[2] === "down") {
    // (dim, ffn0) → (dim, ffn): each row gets ffn - ffn0 zero columns.
    if (cols !== ffn0) throw new SpecdecError(`${f.path}: ${t.name} has ${cols} columns, the feed-forward length is ${ffn0}`);
    const values = new Float32Array(rows * ffn);
    for (let r = 0; r < rows; r++) dequantizeRow(t.type, data, r * rowBytes, values, cols, r * ffn);
    return { values, rows, cols: ffn };
  }
  // gate / up: (ffn0, dim) → (ffn, dim): zero rows appended.
  if (rows !== ffn0) throw new SpecdecError(`${f.path}: ${t.name} has ${rows} rows, the feed-forward length is ${ffn0}`);
  const values = new Float32Array(ffn * cols);
  for (let r = 0; r < rows; r++) dequantizeRow(t.type, data, r * rowBytes, values, cols, r * cols);
  return { values, rows: ffn, cols };
}

/** (rows, cols) f32 values in a storage type, row by row. */
function encode(values: Float32Array, rows: number, cols: number, type: number): Uint8Array {
  if (type === GgmlType.F32) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const first = quantizeRow(type, values, cols, 0);
  const out = new Uint8Array(first.byteLength * rows);
  out.set(first, 0);
  for (let r = 1; r < rows; r++) out.set(quantizeRow(type, values, cols, r * cols), r * first.byteLength);
  return out;
}

/**
 * The heavy twin of `source` in the cache folder (made on first use; `onProgress` reports the
 * writing): `<cache>/twins/<name>-<params>-<type>-<source fingerprint>.gguf`.
 */
export function cachedTwin(source: string, cache: string, options: { params?: number; type?: InflateType; onProgress?: (done: number, total: number) => void } = {}): string {
  const params = options.params ?? 100e6, type = options.type ?? "q8_0";
  const st = statSync(source);
  const tag = createHash("sha256").update(`${source}\0${st.size}\0${st.mtimeMs}`).digest("hex").slice(0, 12);
  const dir = join(cache, "twins");
  const path = join(dir, `${basename(source, ".gguf")}-${Math.round(params / 1e6)}M-${type}-${tag}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  inflateModel(source, path, { params, type, onProgress: options.onProgress });
  return path;
}
