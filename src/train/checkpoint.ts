// Training checkpoints: parameters, AdamW moments, step, RNG state and any extra arrays (e.g.
// the epoch's shuffle order) in one file. Written to a temporary file beside the target and
// renamed over it, so a crash mid-write never leaves a torn checkpoint.
//
// Layout: "SPDCKPT1" (8 bytes), u32 LE header length, header (UTF-8 JSON, padded with spaces to
// a multiple of 4 bytes), then the arrays' raw little-endian bytes in header order.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { SpecdecError } from "../errors.js";
import type { Param } from "./optim.js";

const MAGIC = "SPDCKPT1";

export type CheckpointArray = Float32Array | Int32Array;

interface Header {
  meta: Record<string, unknown>;
  arrays: { name: string; type: "f32" | "i32"; length: number }[];
}

/** The arrays of params, named `${name}.value`, `${name}.m`, `${name}.v`. */
export function paramArrays(params: readonly Param[]): Map<string, CheckpointArray> {
  const out = new Map<string, CheckpointArray>();
  for (const p of params) {
    out.set(`${p.name}.value`, p.value);
    out.set(`${p.name}.m`, p.m);
    out.set(`${p.name}.v`, p.v);
  }
  return out;
}

export function saveCheckpoint(path: string, meta: Record<string, unknown>, arrays: ReadonlyMap<string, CheckpointArray>): void {
  const header: Header = { meta, arrays: [...arrays].map(([name, a]) => ({ name, type: a instanceof Float32Array ? "f32" : "i32", length: a.length })) };
  let json = Buffer.from(JSON.stringify(header), "utf8");
  if (json.length % 4) json = Buffer.concat([json, Buffer.alloc(4 - (json.length % 4), 0x20)]);
  const head = Buffer.alloc(12);
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(json.length, 8);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, head);
    writeSync(fd, json);
    for (const a of arrays.values()) writeSync(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export interface LoadedCheckpoint {
  meta: Record<string, unknown>;
  arrays: Map<string, CheckpointArray>;
}

export function loadCheckpoint(path: string): LoadedCheckpoint {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new SpecdecError(`cannot read checkpoint ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const bad = (why: string) => new SpecdecError(`${path} is not a specdec training checkpoint (${why})`);
  if (buf.length < 12 || buf.toString("latin1", 0, 8) !== MAGIC) throw bad("bad magic");
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) throw bad("truncated header");
  let header: Header;
  try {
    header = JSON.parse(buf.toString("utf8", 12, 12 + len)) as Header;
  } catch {
    throw bad("unreadable header");
  }
  if (!header || typeof header.meta !== "object" || !Array.isArray(header.arrays)) throw bad("unreadable header");
  const arrays = new Map<string, CheckpointArray>();
  let off = 12 + len;
  for (const { name, type, length } of header.arrays) {
    const bytes = length * 4;
    if (!Number.isInteger(length) || length < 0 || off + bytes > buf.length) throw bad("truncated data");
    const copy = new Uint8Array(bytes);
    copy.set(buf.subarray(off, off + bytes));
    arrays.set(name, type === "i32" ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer));
    off += bytes;
  }
  if (off !== buf.length) throw bad("trailing bytes");
  return { meta: header.meta, arrays };
}

/** Copy checkpointed values into params (shapes must match). */
export function restoreParams(path: string, params: readonly Param[], arrays: ReadonlyMap<string, CheckpointArray>): void {
  for (const p of params)
    for (const part of ["value", "m", "v"] as const) {
      const a = arrays.get(`${p.name}.${part}`);
      if (!(a instanceof Float32Array) || a.length !== p[part].length) throw new SpecdecError(`${path}: checkpoint has no ${p.name}.${part} of ${p[part].length} values: made for another configuration`);
      p[part].set(a);
    }
}
