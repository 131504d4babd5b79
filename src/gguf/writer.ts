// GGUF v3 writer: header, metadata, tensor infos, then each tensor's data at an aligned offset.
// The file is written to a temporary name in the same directory and renamed (or, when
// overwriting is not allowed, hard-linked, which fails if the name exists) into place, so an
// interrupted write never leaves a half file under the final name.

import { closeSync, existsSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { SpecdecError } from "../errors.js";
import { ggmlTypeInfo } from "./ggmlTypes.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, type GgufArray, type GgufValue } from "./reader.js";

export interface GgufWriteEntry {
  readonly key: string;
  /** A GgufValueType. */
  readonly type: number;
  readonly value: GgufValue;
}

export interface GgufWriteTensor {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous (fastest-varying) dimension. */
  readonly dims: readonly number[];
  /** A ggml type id (GgmlType). */
  readonly type: number;
  readonly data: Uint8Array;
}

export interface GgufWriteOptions {
  readonly metadata: readonly GgufWriteEntry[];
  readonly tensors: readonly GgufWriteTensor[];
  /** Power of two; written as general.alignment when not the default 32. */
  readonly alignment?: number;
  /** Replace an existing file. Default false: an existing file is an error. */
  readonly overwrite?: boolean;
}

/** Typed constructors for metadata entries: kv.u32("llama.block_count", 5), kv.strings(...). */
export const kv = {
  u8: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.UINT8, value }),
  i8: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.INT8, value }),
  u16: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.UINT16, value }),
  i16: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.INT16, value }),
  u32: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.UINT32, value }),
  i32: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.INT32, value }),
  u64: (key: string, value: bigint): GgufWriteEntry => ({ key, type: GgufValueType.UINT64, value }),
  i64: (key: string, value: bigint): GgufWriteEntry => ({ key, type: GgufValueType.INT64, value }),
  f32: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.FLOAT32, value }),
  f64: (key: string, value: number): GgufWriteEntry => ({ key, type: GgufValueType.FLOAT64, value }),
  bool: (key: string, value: boolean): GgufWriteEntry => ({ key, type: GgufValueType.BOOL, value }),
  string: (key: string, value: string): GgufWriteEntry => ({ key, type: GgufValueType.STRING, value }),
  /** An array of items of one type (nested arrays are GgufArray items). */
  array: (key: string, itemType: number, items: readonly GgufValue[]): GgufWriteEntry => ({ key, type: GgufValueType.ARRAY, value: { itemType, items } }),
  strings: (key: string, items: readonly string[]): GgufWriteEntry => kv.array(key, GgufValueType.STRING, items),
  f32s: (key: string, items: readonly number[] | Float32Array): GgufWriteEntry => kv.array(key, GgufValueType.FLOAT32, Array.from(items)),
  i32s: (key: string, items: readonly number[] | Int32Array): GgufWriteEntry => kv.array(key, GgufValueType.INT32, Array.from(items)),
  u32s: (key: string, items: readonly number[] | Uint32Array): GgufWriteEntry => kv.array(key, GgufValueType.UINT32, Array.from(items)),
};

// Growable little-endian byte buffer for the header part of the file.
class Sink {
  buf = Buffer.alloc(1 << 16);
  len = 0;

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const b = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(b, 0, 0, this.len);
      this.buf = b;
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  // The offset first: room() may replace this.buf, and `this.buf.write…(v, this.room(n))` would
  // write into the old buffer (the receiver is evaluated before the arguments).
  u8(v: number): void { const at = this.room(1); this.buf.writeUInt8(v, at); }
  i8(v: number): void { const at = this.room(1); this.buf.writeInt8(v, at); }
  u16(v: number): void { const at = this.room(2); this.buf.writeUInt16LE(v, at); }
  i16(v: number): void { const at = this.room(2); this.buf.writeInt16LE(v, at); }
  u32(v: number): void { const at = this.room(4); this.buf.writeUInt32LE(v, at); }
  i32(v: number): void { const at = this.room(4); this.buf.writeInt32LE(v, at); }
  f32(v: number): void { const at = this.room(4); this.buf.writeFloatLE(v, at); }
  f64(v: number): void { const at = this.room(8); this.buf.writeDoubleLE(v, at); }
  u64(v: bigint): void { const at = this.room(8); this.buf.writeBigUInt64LE(v, at); }
  i64(v: bigint): void { const at = this.room(8); this.buf.writeBigInt64LE(v, at); }
  bytes(b: Uint8Array): void { const at = this.room(b.length); this.buf.set(b, at); }
  string(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.u64(BigInt(n));
    const at = this.room(n);
    this.buf.write(s, at, n, "utf8");
  }
}

const INT_RANGE: Record<number, [number, number]> = {
  [GgufValueType.UINT8]: [0, 0xff], [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff], [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff], [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function writeValue(s: Sink, type: number, v: GgufValue, what: string): void {
  const bad = (expected: string): never => {
    throw new SpecdecError(`${what}: expected ${expected} for metadata type ${type}, got ${typeof v === "object" ? "an array" : JSON.stringify(String(v))}`);
  };
  switch (type) {
    case GgufValueType.UINT8: case GgufValueType.INT8: case GgufValueType.UINT16:
    case GgufValueType.INT16: case GgufValueType.UINT32: case GgufValueType.INT32: {
      const [lo, hi] = INT_RANGE[type];
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) bad(`an integer in ${lo}..${hi}`);
      const n = v as number;
      if (type === GgufValueType.UINT8) s.u8(n); else if (type === GgufValueType.INT8) s.i8(n);
      else if (type === GgufValueType.UINT16) s.u16(n); else if (type === GgufValueType.INT16) s.i16(n);
      else if (type === GgufValueType.UINT32) s.u32(n); else s.i32(n);
      return;
    }
    case GgufValueType.UINT64: case GgufValueType.INT64: {
      // bigint as the reader returns it; a safe integer number is accepted too.
      const b = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : bad("a bigint");
      const unsigned = type === GgufValueType.UINT64;
      if (unsigned ? b < 0n || b > 0xffffffffffffffffn : b < -(1n << 63n) || b >= 1n << 63n) bad(`a ${unsigned ? "u64" : "i64"} value`);
      if (unsigned) s.u64(b); else s.i64(b);
      return;
    }
    case GgufValueType.FLOAT32: if (typeof v !== "number") bad("a number"); s.f32(v as number); return;
    case GgufValueType.FLOAT64: if (typeof v !== "number") bad("a number"); s.f64(v as number); return;
    case GgufValueType.BOOL: if (typeof v !== "boolean") bad("a boolean"); s.u8(v ? 1 : 0); return;
    case GgufValueType.STRING: if (typeof v !== "string") bad("a string"); s.string(v as string); return;
    case GgufValueType.ARRAY: {
      if (typeof v !== "object" || v === null || !("items" in v)) bad("an array ({itemType, items})");
      const a = v as GgufArray;
      s.u32(a.itemType);
      s.u64(BigInt(a.items.length));
      for (let i = 0; i < a.items.length; i++) writeValue(s, a.itemType, a.items[i], `${what}[${i}]`);
      return;
    }
    default:
      throw new SpecdecError(`${what}: unknown metadata value type ${type}`);
  }
}

/** The bytes of one metadata entry (key, value type, value) as writeGguf lays it out. */
export function encodeMetadataEntry(e: GgufWriteEntry): Buffer {
  const s = new Sink();
  s.string(e.key);
  s.u32(e.type);
  writeValue(s, e.type, e.value, `metadata ${e.key}`);
  return Buffer.from(s.buf.subarray(0, s.len));
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Write a GGUF v3 file. Throws SpecdecError on bad input or when `path` exists (unless overwrite). */
export function writeGguf(path: string, opts: GgufWriteOptions): void {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 30 || (alignment & (alignment - 1)) !== 0)
    throw new SpecdecError(`GGUF alignment must be a power of two, got ${alignment}`);
  if (!opts.overwrite && existsSync(path)) throw new SpecdecError(`${path} already exists (refusing to overwrite it)`);

  // Metadata, with general.alignment added when it is not the default (readers need it).
  const metadata = [...opts.metadata];
  const keys = new Set<string>();
  for (const e of metadata) {
    if (keys.has(e.key)) throw new SpecdecError(`duplicate metadata key ${e.key}`);
    keys.add(e.key);
  }
  const declared = metadata.find((e) => e.key === "general.alignment");
  if (declared) {
    if (declared.type !== GgufValueType.UINT32 || declared.value !== alignment)
      throw new SpecdecError(`metadata general.alignment (${String(declared.value)}) disagrees with the alignment option ${alignment}`);
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    metadata.push(kv.u32("general.alignment", alignment));
  }

  // Tensor layout: each tensor's data starts at an aligned offset from the data section.
  const names = new Set<string>();
  const offsets: number[] = [];
  let dataSize = 0;
  for (const t of opts.tensors) {
    if (names.has(t.name)) throw new SpecdecError(`duplicate tensor name ${t.name}`);
    names.add(t.name);
    const info = ggmlTypeInfo(t.type);
    if (!info) throw new SpecdecError(`tensor ${t.name}: unknown ggml type ${t.type}`);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new SpecdecError(`tensor ${t.name}: dims must be 1 to 4 non-negative integers, got [${t.dims.join(", ")}]`);
    if (t.dims[0] % info.blockSize !== 0) throw new SpecdecError(`tensor ${t.name}: a row of ${t.dims[0]} is not a multiple of the ${info.name} block size ${info.blockSize}`);
    const bytes = (t.dims.reduce((a, b) => a * b, 1) / info.blockSize) * info.typeSize;
    if (t.data.byteLength !== bytes) throw new SpecdecError(`tensor ${t.name}: ${info.name} [${t.dims.join(", ")}] needs ${bytes} bytes of data, got ${t.data.byteLength}`);
    dataSize = alignUp(dataSize, alignment);
    offsets.push(dataSize);
    dataSize += bytes;
  }

  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(BigInt(opts.tensors.length));
  s.u64(BigInt(metadata.length));
  for (const e of metadata) {
    s.bytes(encodeMetadataEntry(e));
  }
  opts.tensors.forEach((t, i) => {
    s.string(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(BigInt(d));
    s.u32(t.type);
    s.u64(BigInt(offsets[i]));
  });
  const headerEnd = s.len;
  const zeros = new Uint8Array(alignment);

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, "wx");
  } catch (e) {
    throw new SpecdecError(`cannot write ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  try {
    try {
      writeAll(fd, s.buf.subarray(0, headerEnd));
      writeAll(fd, zeros.subarray(0, alignUp(headerEnd, alignment) - headerEnd));
      let pos = 0;
      opts.tensors.forEach((t, i) => {
        writeAll(fd, zeros.subarray(0, offsets[i] - pos));
        writeAll(fd, t.data);
        pos = offsets[i] + t.data.byteLength;
      });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    publish(tmp, path, opts.overwrite === true);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    if (e instanceof SpecdecError) throw e;
    throw new SpecdecError(`cannot write ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let at = 0; at < b.byteLength; ) at += writeSync(fd, b, at, b.byteLength - at);
}

// Move the finished temporary file to its final name.
function publish(tmp: string, path: string, overwrite: boolean): void {
  if (overwrite) return renameSync(tmp, path);
  try {
    linkSync(tmp, path); // atomic, and fails if someone created `path` meanwhile
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new SpecdecError(`${path} already exists (refusing to overwrite it)`);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS" && code !== "EXDEV") throw e;
    // Filesystems without hard links: check and rename.
    if (existsSync(path)) throw new SpecdecError(`${path} already exists (refusing to overwrite it)`);
    return renameSync(tmp, path);
  }
  unlinkSync(tmp);
}
