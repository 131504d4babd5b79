// Where each field of a (valid) GGUF file lies: the seed is parsed with specdec's own reader,
// and the byte offset of every header field, key, value, array, tensor info and tensor data
// is derived from what the reader returned (key and string byte lengths, value types, item
// counts), then checked against the reader's data offset so a layout never silently drifts.
//
// File layout (GGUF v2/v3, little-endian):
//   magic u32 | version u32 | tensor_count u64 | kv_count u64
//   kv_count × { key: u64 length + bytes | value_type u32 | value }
//     value: scalar | string (u64 length + bytes) | array (item_type u32 | count u64 | items)
//   tensor_count × { name: u64 length + bytes | n_dims u32 | dims u64 × n_dims | type u32 | offset u64 }
//   padding to the alignment | tensor data (each tensor at data offset + its offset)

import { GgufValueType, openGguf, type GgufValue } from "./specdec.js";

export const SCALAR_BYTES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export interface KvLayout {
  readonly index: number;
  readonly key: string;
  /** Offset of the key's u64 length; the entry ends at `end`. */
  readonly at: number;
  readonly keyBytes: number;
  readonly typeAt: number;
  readonly type: number;
  readonly valueAt: number;
  readonly end: number;
  /** Arrays: item type, count, where the items start, and each string item's offset (lazily). */
  readonly itemType?: number;
  readonly count?: number;
  readonly itemsAt?: number;
  readonly stringItemAt?: (i: number) => number;
}

export interface TensorLayout {
  readonly index: number;
  readonly name: string;
  readonly at: number;
  readonly nDimsAt: number;
  readonly nDims: number;
  readonly dimsAt: number;
  readonly typeAt: number;
  readonly type: number;
  readonly offsetAt: number;
  readonly end: number;
  /** Absolute offset and length of the tensor's data. */
  readonly dataAt: number;
  readonly byteLength: number;
}

export interface GgufLayout {
  readonly size: number;
  readonly version: number;
  readonly alignment: number;
  readonly kvs: readonly KvLayout[];
  readonly tensors: readonly TensorLayout[];
  /** End of the last tensor info (before padding). */
  readonly headerEnd: number;
  /** Start of the tensor data section. */
  readonly dataOffset: number;
}

export const HEADER = { magicAt: 0, versionAt: 4, tensorCountAt: 8, kvCountAt: 16, firstKvAt: 24 } as const;

const utf8Bytes = (s: string) => Buffer.byteLength(s, "utf8");

function valueBytes(type: number, value: GgufValue): number {
  if (type === GgufValueType.STRING) return 8 + utf8Bytes(value as string);
  if (type === GgufValueType.ARRAY) {
    const a = value as { itemType: number; items: readonly GgufValue[] };
    let n = 12;
    for (const item of a.items) n += valueBytes(a.itemType, item);
    return n;
  }
  const n = SCALAR_BYTES[type];
  if (n === undefined) throw new Error(`seed has an unknown value type ${type}`);
  return n;
}

/** The layout of the GGUF file at `path` (whose bytes are `bytes`). Throws if the seed is not valid. */
export function ggufLayout(path: string, bytes: Uint8Array): GgufLayout {
  const f = openGguf(path);
  try {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const kvCount = Number(view.readBigUInt64LE(HEADER.kvCountAt));
    if (kvCount !== f.metadata.size) throw new Error(`${path}: ${kvCount} metadata entries in the header, ${f.metadata.size} distinct keys: duplicate keys make a poor seed`);
    const kvs: KvLayout[] = [];
    let pos: number = HEADER.firstKvAt;
    let index = 0;
    for (const [key, entry] of f.metadata) {
      const keyBytes = utf8Bytes(key);
      const typeAt = pos + 8 + keyBytes;
      const valueAt = typeAt + 4;
      const end = valueAt + valueBytes(entry.type, entry.value);
      if (entry.type === GgufValueType.ARRAY) {
        const a = entry.value as { itemType: number; items: readonly GgufValue[] };
        const itemsAt = valueAt + 12;
        let offsets: Float64Array | undefined;
        const stringItemAt = (i: number): number => {
          if (!offsets) {
            offsets = new Float64Array(a.items.length);
            let p = itemsAt;
            for (let k = 0; k < a.items.length; k++) {
              offsets[k] = p;
              p += 8 + utf8Bytes(a.items[k] as string);
            }
          }
          return offsets[i];
        };
        kvs.push({ index, key, at: pos, keyBytes, typeAt, type: entry.type, valueAt, end, itemType: a.itemType, count: a.items.length, itemsAt, stringItemAt: a.itemType === GgufValueType.STRING ? stringItemAt : undefined });
      } else kvs.push({ index, key, at: pos, keyBytes, typeAt, type: entry.type, valueAt, end });
      pos = end;
      index++;
    }
    const tensors: TensorLayout[] = f.tensors.map((t, i) => {
      const at = pos;
      const nDimsAt = at + 8 + utf8Bytes(t.name);
      const dimsAt = nDimsAt + 4;
      const typeAt = dimsAt + 8 * t.dims.length;
      const offsetAt = typeAt + 4;
      pos = offsetAt + 8;
      return { index: i, name: t.name, at, nDimsAt, nDims: t.dims.length, dimsAt, typeAt, type: t.type, offsetAt, end: pos, dataAt: t.offset, byteLength: t.byteLength };
    });
    const dataOffset = Math.ceil(pos / f.alignment) * f.alignment;
    if (dataOffset !== f.dataOffset) throw new Error(`${path}: layout drifted (computed data offset ${dataOffset}, the reader says ${f.dataOffset})`);
    return { size: bytes.length, version: f.version, alignment: f.alignment, kvs, tensors, headerEnd: pos, dataOffset };
  } finally {
    f.close();
  }
}
