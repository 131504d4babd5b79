// Training checkpoints: parameters, AdamW moments, step, RNG state and any extra arrays (e.g.
// the epoch's shuffle order, the per-step losses) in one file. Written to a temporary file beside
// the target and renamed over it, so a crash mid-write never leaves a torn checkpoint.
//
// Layout: "SPDCKPT1" (8 bytes), u32 LE header length, header (UTF-8 JSON, padded with spaces to
// a multiple of 4 bytes), then the arrays' raw little-endian bytes in header order (f32 and i32:
// 4 bytes an element, f64: 8).
//
// Also the pieces the trainers share to checkpoint and resume: the hooks (CheckpointHooks) and
// their check (checkCheckpointHooks: resume needs a checkpoint), the checks a resumed checkpoint
// must pass (openResume: its kind and the hash of the data and of every option that changes the
// result) and two ways to drive a trainer written as a generator that yields after each step:
// runToEnd (synchronously) and runYielding (letting the event loop, and so SIGINT handlers, run
// between steps).

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { SpecdecError } from "../errors.js";
import { shuffleInPlace, type SeededRng } from "../sampling/rng.js";
import { TrainOptionError } from "./optionError.js";
import type { Param } from "./optim.js";

const MAGIC = "SPDCKPT1";

export type CheckpointArray = Float32Array | Int32Array | Float64Array;

interface Header {
  meta: Record<string, unknown>;
  arrays: { name: string; type: "f32" | "i32" | "f64"; length: number }[];
}

const arrayType = (a: CheckpointArray): "f32" | "i32" | "f64" => (a instanceof Float32Array ? "f32" : a instanceof Float64Array ? "f64" : "i32");

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
  const header: Header = { meta, arrays: [...arrays].map(([name, a]) => ({ name, type: arrayType(a), length: a.length })) };
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
    const bytes = length * (type === "f64" ? 8 : 4);
    if (!Number.isInteger(length) || length < 0 || off + bytes > buf.length) throw bad("truncated data");
    const copy = new Uint8Array(bytes);
    copy.set(buf.subarray(off, off + bytes));
    arrays.set(name, type === "i32" ? new Int32Array(copy.buffer) : type === "f64" ? new Float64Array(copy.buffer) : new Float32Array(copy.buffer));
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

/** What a trainer is told about checkpoints (trainModel, trainDraft, trainMedusa). */
export interface CheckpointHooks {
  /** Save a checkpoint here every `checkpointEvery` steps, when stopping early, and at the end. */
  checkpoint?: string;
  checkpointEvery?: number;
  /** Continue from `checkpoint`. */
  resume?: boolean;
  /** Stop (with a checkpoint) once this many steps are done. */
  stopAfter?: number;
  /** Polled before every step: true stops the run (with a checkpoint). */
  shouldStop?: () => boolean;
}

/** The checkpoint options make sense together (before any work): `resume` needs `checkpoint`. */
export function checkCheckpointHooks(hooks: Pick<CheckpointHooks, "checkpoint" | "resume">): void {
  if (hooks.resume && !hooks.checkpoint) throw new TrainOptionError((o) => `${o("resume")} needs ${o("checkpoint")} (the file to continue from)`);
}

/**
 * Load the checkpoint to resume from (`path`: the checkpoint option) and check it: it exists, is
 * of this `kind` of training, passes `check` (e.g. made for the same model: a clearer message
 * than the hash's) and was made with the same data and options (`configHash`). One-line
 * SpecdecErrors otherwise.
 */
export function openResume(path: string, kind: string, configHash: string, check?: (meta: Record<string, unknown>, path: string) => void): LoadedCheckpoint {
  if (!existsSync(path)) throw new TrainOptionError((o) => `${o("resume")}: checkpoint ${path} does not exist`);
  const ck = loadCheckpoint(path);
  const m = ck.meta as { kind?: unknown; configHash?: unknown };
  if (m.kind !== kind) throw new SpecdecError(`${path} is a checkpoint of another kind of training (${String(m.kind)}, not ${kind})`);
  check?.(ck.meta, path);
  if (m.configHash !== configHash) throw new TrainOptionError((o) => `${path}: checkpoint made with other data or training options: resume with the same ones, or start again without ${o("resume")}`);
  return ck;
}

/** The step (0..steps) and RNG state of a resumed checkpoint, checked. */
export function resumedPosition(path: string, meta: Record<string, unknown>, steps: number): { step: number; rngState: number } {
  const { step, rngState } = meta as { step?: unknown; rngState?: unknown };
  const u32 = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
  if (!u32(step) || step > steps || !u32(rngState)) throw new SpecdecError(`${path} is not a specdec training checkpoint (bad step or RNG state)`);
  return { step, rngState };
}

/**
 * Restore a resumed run's parameters and per-step losses (appended to `losses`); returns its step
 * and RNG state. The losses must be there, one per step done.
 */
export function restoreRun(ck: LoadedCheckpoint, path: string, params: readonly Param[], steps: number, losses: number[]): { step: number; rngState: number } {
  const pos = resumedPosition(path, ck.meta, steps);
  restoreParams(path, params, ck.arrays);
  const l = ck.arrays.get("losses");
  if (!(l instanceof Float64Array) || l.length !== pos.step) throw new SpecdecError(`${path} is not a specdec training checkpoint (no losses for its ${pos.step} steps)`);
  for (let i = 0; i < l.length; i++) losses.push(l[i]);
  return pos;
}

/**
 * Where a trainer that walks a shuffled order of `n` examples (Medusa heads, the EAGLE head)
 * starts: the order 0..n−1 shuffled under rng, at step 0; or, resuming from `resume.ck`, its
 * parameters restored and where it stood — the order, the cursor in it, the epoch, the step and
 * the RNG state, set into rng (each checked).
 */
export function startShuffledRun(rng: SeededRng, n: number, resume?: { path: string; ck: LoadedCheckpoint; params: readonly Param[]; steps: number }): { order: Int32Array; cursor: number; epoch: number; step: number } {
  const fresh = new Int32Array(n);
  for (let i = 0; i < n; i++) fresh[i] = i;
  shuffleInPlace(rng, fresh);
  if (!resume) return { order: fresh, cursor: 0, epoch: 0, step: 0 };
  const { path, ck } = resume;
  const pos = resumedPosition(path, ck.meta, resume.steps);
  restoreParams(path, resume.params, ck.arrays);
  const order = ck.arrays.get("order"), { cursor, epoch } = ck.meta;
  if (!(order instanceof Int32Array) || order.length !== n) throw new SpecdecError(`${path}: checkpoint's data order does not match the data`);
  if (!(typeof cursor === "number" && Number.isInteger(cursor) && cursor >= 0 && cursor <= n) || !(typeof epoch === "number" && Number.isInteger(epoch) && epoch >= 0))
    throw new SpecdecError(`${path} is not a specdec training checkpoint (bad cursor or epoch)`);
  rng.state = pos.rngState;
  return { order, cursor, epoch, step: pos.step };
}

/** Whether a run stops before `step`: asked to stop after so many steps, or interrupted. */
export function stopRequested(hooks: CheckpointHooks, step: number): boolean {
  return (hooks.stopAfter !== undefined && step >= hooks.stopAfter) || hooks.shouldStop?.() === true;
}

/**
 * A trainer written as a generator: it yields after each step, or yields a promise to wait for
 * (a data-parallel step's workers) and is resumed with its outcome.
 */
export type TrainerRun<R> = Generator<Promise<void> | void, R, void>;

/** Run a trainer generator to its end, synchronously (one that never yields a promise). */
export function runToEnd<R>(run: TrainerRun<R>): R {
  for (;;) {
    const r = run.next();
    if (r.done) return r.value;
    if (r.value) throw new Error("this trainer waits for worker threads: run it with runYielding");
  }
}

/**
 * Run a trainer generator to its end, letting the event loop run (signals, timers) every
 * `everyMs`, and while it waits for a promise it yielded: the trainer is resumed with the
 * promise's outcome (an error is thrown inside it, so that it cleans up on its way out).
 */
export async function runYielding<R>(run: TrainerRun<R>, everyMs = 25): Promise<R> {
  let last = performance.now();
  let r = run.next();
  for (;;) {
    if (r.done) return r.value;
    if (r.value) {
      let error: { e: unknown } | undefined;
      try {
        await r.value;
      } catch (e) {
        error = { e };
      }
      last = performance.now();
      r = error ? run.throw(error.e) : run.next();
      continue;
    }
    if (performance.now() - last >= everyMs) {
      await new Promise((resolve) => setImmediate(resolve));
      last = performance.now();
    }
    r = run.next();
  }
}
