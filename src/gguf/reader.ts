// GGUF reader (versions 2 and 3). Reads the header, metadata and tensor infos through a
// small buffered cursor over the file descriptor, so a multi-gigabyte model is never read
// into one buffer; tensor data is read lazily, one tensor at a time.
// Every count and length is checked against the bytes left in the file before anything is
// allocated, so a corrupt header gives a clear error instead of an out-of-memory crash.

import { closeSync, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { excerpt, SpecdecError } from "../errors.js";
import { ggmlTypeInfo } from "./ggmlTypes.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME: a tensor name has fewer bytes than this. */
export const GGML_MAX_NAME = 64;

/** GGUF metadata value types (gguf.h). */
export const GgufValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
  STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

const TYPE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];
/** A metadata value type's short name (u32, f32, string, ...). */
export function valueTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** A metadata value: numbers (64-bit integers as bigint), booleans, strings, or arrays of them. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufArray;
export interface GgufArray {
  readonly itemType: number;
  readonly items: readonly GgufValue[];
}

export interface GgufMetadataEntry {
  readonly type: number;
  readonly value: GgufValue;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous (fastest-varying) dimension. */
  readonly dims: readonly number[];
  readonly type: number;
  /** Absolute offset of the tensor's data in the file. */
  readonly offset: number;
  readonly byteLength: number;
  readonly elementCount: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly alignment: number;
  /** Absolute offset where the tensor data section starts. */
  readonly dataOffset: number;
  readonly metadata: ReadonlyMap<string, GgufMetadataEntry>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Read one tensor's raw bytes (a fresh buffer, aligned for typed-array views). */
  readTensorData(tensor: GgufTensorInfo): Uint8Array;
  close(): void;
}

// Reads forward through the file in chunks; `need(n)` guarantees n bytes are buffered or throws.
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0; // absolute file offset

  constructor(private readonly fd: number, readonly fileSize: number, private readonly what: string) {}

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  private need(n: number): number {
    if (n > this.remaining) throw new SpecdecError(`${this.what}: truncated GGUF file (needed ${n} bytes at offset ${this.pos}, file is ${this.fileSize} bytes)`);
    const rel = this.pos - this.bufStart;
    if (rel + n <= this.buf.length) return rel;
    const size = Math.min(Math.max(n, 1 << 20), this.remaining);
    const b = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const r = readSync(this.fd, b, got, size - got, this.pos + got);
      if (r === 0) throw new SpecdecError(`${this.what}: truncated GGUF file (read past end at offset ${this.pos + got})`);
      got += r;
    }
    this.buf = b;
    this.bufStart = this.pos;
    return 0;
  }

  u8(): number { const r = this.need(1); this.pos += 1; return this.buf.readUInt8(r); }
  i8(): number { const r = this.need(1); this.pos += 1; return this.buf.readInt8(r); }
  u16(): number { const r = this.need(2); this.pos += 2; return this.buf.readUInt16LE(r); }
  i16(): number { const r = this.need(2); this.pos += 2; return this.buf.readInt16LE(r); }
  u32(): number { const r = this.need(4); this.pos += 4; return this.buf.readUInt32LE(r); }
  i32(): number { const r = this.need(4); this.pos += 4; return this.buf.readInt32LE(r); }
  f32(): number { const r = this.need(4); this.pos += 4; return this.buf.readFloatLE(r); }
  f64(): number { const r = this.need(8); this.pos += 8; return this.buf.readDoubleLE(r); }
  u64(): bigint { const r = this.need(8); this.pos += 8; return this.buf.readBigUInt64LE(r); }
  i64(): bigint { const r = this.need(8); this.pos += 8; return this.buf.readBigInt64LE(r); }

  /** A u64 used as a size or count: must fit in a safe integer. */
  size(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SpecdecError(`${this.what}: absurd ${what} ${v} in GGUF header`);
    return Number(v);
  }

  string(): string {
    const len = this.size("string length");
    if (len > this.remaining) throw new SpecdecError(`${this.what}: string length ${len} at offset ${this.pos - 8} runs past the end of the file`);
    const r = this.need(len);
    this.pos += len;
    return this.buf.toString("utf8", r, r + len);
  }
}

function readValue(c: Cursor, type: number, what: string, depth = 0): GgufValue {
  switch (type) {
    case GgufValueType.UINT8: return c.u8();
    case GgufValueType.INT8: return c.i8();
    case GgufValueType.UINT16: return c.u16();
    case GgufValueType.INT16: return c.i16();
    case GgufValueType.UINT32: return c.u32();
    case GgufValueType.INT32: return c.i32();
    case GgufValueType.FLOAT32: return c.f32();
    case GgufValueType.FLOAT64: return c.f64();
    case GgufValueType.BOOL: return c.u8() !== 0;
    case GgufValueType.UINT64: return c.u64();
    case GgufValueType.INT64: return c.i64();
    case GgufValueType.STRING: return c.string();
    case GgufValueType.ARRAY: {
      if (depth > 4) throw new SpecdecError(`${what}: arrays nested too deeply`);
      const itemType = c.u32();
      const count = c.size("array length");
      // Each item takes at least one byte (strings at least 8): reject counts the file cannot hold.
      const minItem = itemType === GgufValueType.STRING ? 8 : itemType === GgufValueType.ARRAY ? 12 : SCALAR_SIZE[itemType];
      if (minItem === undefined) throw new SpecdecError(`${what}: unknown metadata value type ${itemType}`);
      if (count * minItem > c.remaining) throw new SpecdecError(`${what}: array of ${count} items runs past the end of the file`);
      const items: GgufValue[] = new Array(count);
      for (let i = 0; i < count; i++) items[i] = readValue(c, itemType, what, depth + 1);
      return { itemType, items };
    }
    default:
      throw new SpecdecError(`${what}: unknown metadata value type ${type}`);
  }
}

/** What a path is, when it is not a regular file (a FIFO would block open() until a writer comes). */
export function notAFile(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/** Open and validate a GGUF file. Throws SpecdecError with a one-line message on bad input. */
export function openGguf(path: string): GgufFile {
  // Stat first: only a regular file is opened (symlinks are followed).
  let kind: string | undefined;
  try {
    kind = notAFile(statSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new SpecdecError(`model file not found: ${path}`);
    throw new SpecdecError(`cannot open ${path}: ${code ?? (e as Error).message}`);
  }
  if (kind) throw new SpecdecError(`${path} is ${kind}, not a GGUF file`);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new SpecdecError(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    kind = notAFile(st); // replaced between the stat and the open
    if (kind) throw new SpecdecError(`${path} is ${kind}, not a GGUF file`);
    return parse(fd, path, st.size);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function parse(fd: number, path: string, fileSize: number): GgufFile {
  const c = new Cursor(fd, fileSize, path);
  if (fileSize < 4 || c.u32() !== GGUF_MAGIC) throw new SpecdecError(`${path} is not a GGUF file (bad magic)`);
  const version = c.u32();
  if (version !== 2 && version !== 3) throw new SpecdecError(`${path}: unsupported GGUF version ${version} (supported: 2, 3)`);
  const tensorCount = c.size("tensor count");
  const kvCount = c.size("metadata count");
  // A tensor info takes at least 8+4+8+4+8 bytes, a key/value at least 8+4+1.
  if (tensorCount * 32 > c.remaining || kvCount * 13 > c.remaining)
    throw new SpecdecError(`${path}: absurd counts in GGUF header (${tensorCount} tensors, ${kvCount} metadata entries for a ${fileSize}-byte file)`);

  const metadata = new Map<string, GgufMetadataEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string();
    // gguf.cpp refuses a repeated key too: which of the two values counts would be a guess.
    if (metadata.has(key)) throw new SpecdecError(`${path}: metadata key ${excerpt(key)} appears twice`);
    const type = c.u32();
    metadata.set(key, { type, value: readValue(c, type, `${path}: metadata ${excerpt(key)}`) });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    // As gguf.cpp: a u32 power of two (a float 0.5 or a u64 would be read differently by others).
    const v = al.value;
    if (al.type !== GgufValueType.UINT32 || typeof v !== "number" || v <= 0 || (v & (v - 1)) !== 0)
      throw new SpecdecError(`${path}: general.alignment must be a power of two, got ${typeof v === "string" ? excerpt(v) : typeof v === "object" ? "an array" : String(v)}${al.type !== GgufValueType.UINT32 ? ` (${valueTypeName(al.type)}; GGUF requires a u32)` : ""}`);
    alignment = v;
  }

  const raw: { name: string; shown: string; dims: number[]; type: number; rel: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string();
    const shown = excerpt(name);
    // As gguf.cpp: a name shorter than GGML_MAX_NAME bytes, and no name twice.
    if (Buffer.byteLength(name, "utf8") >= GGML_MAX_NAME) throw new SpecdecError(`${path}: tensor name ${shown} is longer than GGUF's ${GGML_MAX_NAME - 1} bytes`);
    if (names.has(name)) throw new SpecdecError(`${path}: tensor ${shown} appears twice`);
    names.add(name);
    const nDims = c.u32();
    if (nDims < 1 || nDims > 4) throw new SpecdecError(`${path}: tensor ${shown} has ${nDims} dimensions (1 to 4 allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.size(`dimension of tensor ${shown}`));
    const type = c.u32();
    const rel = c.size(`offset of tensor ${shown}`);
    raw.push({ name, shown, dims, type, rel });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;

  const tensors: GgufTensorInfo[] = raw.map(({ name, shown, dims, type, rel }) => {
    const info = ggmlTypeInfo(type);
    if (!info) throw new SpecdecError(`${path}: tensor ${shown} has unknown or unsupported type ${type}`);
    let elementCount = 1;
    for (const d of dims) {
      elementCount *= d;
      if (!Number.isSafeInteger(elementCount)) throw new SpecdecError(`${path}: tensor ${shown} has absurd dimensions [${dims.join(", ")}]`);
    }
    if (dims[0] % info.blockSize !== 0) throw new SpecdecError(`${path}: tensor ${shown} row of ${dims[0]} is not a multiple of the ${info.name} block size ${info.blockSize}`);
    const byteLength = (elementCount / info.blockSize) * info.typeSize;
    const offset = dataOffset + rel;
    if (rel % alignment !== 0) throw new SpecdecError(`${path}: tensor ${shown} data offset ${rel} is not aligned to ${alignment}`);
    if (offset + byteLength > fileSize)
      throw new SpecdecError(`${path}: truncated GGUF file (tensor ${shown} data runs past the end of the file: needs bytes up to ${offset + byteLength}, file is ${fileSize})`);
    return { name, dims, type, offset, byteLength, elementCount };
  });

  let closed = false;
  return {
    path, version, fileSize, alignment, dataOffset, metadata, tensors,
    readTensorData(t: GgufTensorInfo): Uint8Array {
      if (closed) throw new Error("GGUF file is closed");
      // An ArrayBuffer of its own keeps the data 8-byte aligned for Float32Array/Float64Array views.
      const out = new Uint8Array(new ArrayBuffer(t.byteLength));
      let got = 0;
      while (got < t.byteLength) {
        const r = readSync(fd, out, got, t.byteLength - got, t.offset + got);
        if (r === 0) throw new SpecdecError(`${path}: truncated GGUF file while reading tensor ${excerpt(t.name)}`);
        got += r;
      }
      return out;
    },
    close() {
      if (!closed) closeSync(fd);
      closed = true;
    },
  };
}

// ---- typed accessors for metadata ----

export function metaValue(f: GgufFile, key: string): GgufValue | undefined {
  return f.metadata.get(key)?.value;
}

export function metaString(f: GgufFile, key: string): string | undefined {
  const v = metaValue(f, key);
  return typeof v === "string" ? v : undefined;
}

export function metaNumber(f: GgufFile, key: string): number | undefined {
  const v = metaValue(f, key);
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  return undefined;
}

export function metaArray(f: GgufFile, key: string): readonly GgufValue[] | undefined {
  const v = metaValue(f, key);
  return typeof v === "object" && v !== null && "items" in v ? v.items : undefined;
}
