// c(n): what one target pass over n tokens costs, measured on the target itself (per model file,
// backend, thread count and read mode), cached outside the repository. Speculation can pay only
// where c(n) is much less than n·c(1).

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { cpus, homedir } from "node:os";
import { join } from "node:path";
import type { Target } from "../targets/target.js";
import type { Token } from "../types.js";

/** Measured pass times: for each thread count, milliseconds per pass of n tokens (the median of several rounds). */
export interface PassCostTable {
  /** Pass sizes measured, ascending (1 first). */
  readonly sizes: readonly number[];
  /** threads → ms per size (same order as sizes). */
  readonly ms: Readonly<Record<string, readonly number[]>>;
  /** Tokens in the cache while measuring. */
  readonly contextLength: number;
  readonly read: "argmax" | "probabilities";
  /** Measured with the hidden states read out too (what a feature drafter's passes cost). */
  readonly hidden?: boolean;
  /**
   * threads → ms a pass pays on top of `ms` when its size differs from the last pass's (llama.cpp
   * builds a new compute graph then): `ms` are passes repeated at one size. Absent in tables of
   * targets that do not reuse graphs.
   */
  readonly switchMs?: Readonly<Record<string, number>>;
}

/** The sizes worth measuring: every size to 8, then steps up to 33 (a pass of 32 guesses) or the batch. */
export function passSizes(maxBatch: number): number[] {
  return [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 17, 21, 25, 33].filter((n) => n <= maxBatch);
}

export interface PassCostMeasureOptions {
  /** Pass sizes (default passSizes(target.maxBatch)). */
  sizes?: readonly number[];
  /** Thread counts to measure (default target.threadCounts, else the target's own setting only). */
  threads?: readonly number[];
  /** Timed rounds over all sizes (each size's median kept); slow models stop after 3 rounds once 3 s are spent. Default 9. */
  repeats?: number;
  /** Tokens in the cache while measuring. Default min(64, contextSize / 4). */
  contextLength?: number;
  read?: "argmax" | "probabilities";
  /** Passes return the hidden states too (Medusa, EAGLE: on llama.cpp that turns on embeddings, which costs). Default false. */
  hidden?: boolean;
  /** Called after each round with (done, total), for a progress line. */
  onProgress?: (done: number, total: number) => void;
  /** The clock passes are timed with, ms. Default performance.now (tests give a simulated one). */
  now?: () => number;
}

/** Time after a change of pass shape before a pass of the new shape counts as settled. */
const SETTLE_MS = 3;

/** Measure c(n) on the target (its cache is reset before and after). */
export async function measurePassCost(target: Target, options: PassCostMeasureOptions = {}): Promise<PassCostTable> {
  const sizes = [...(options.sizes ?? passSizes(target.maxBatch))].filter((n) => n >= 1 && n <= target.maxBatch).sort((a, b) => a - b);
  if (sizes[0] !== 1) sizes.unshift(1);
  const threads = options.threads ?? target.threadCounts ?? [0];
  const repeats = options.repeats ?? 9;
  const read = options.read ?? "argmax";
  const now = options.now ?? (() => performance.now());
  const ctx = Math.max(1, Math.min(options.contextLength ?? 64, Math.floor(target.contextSize / 4), target.contextSize - sizes[sizes.length - 1] - 1));
  // Real tokens of the model's own text: some kernels' speed does not depend on ids, some caches do.
  const text = target.tokenize("Once upon a time, there was a little girl who lived in a village near the forest. ");
  const tok = (i: number) => (text.length > 0 ? text[i % text.length] : ((i % target.vocabSize) as Token));
  const prefix = Array.from({ length: ctx }, (_, i) => tok(i));
  const ms: Record<string, number[]> = {};
  const switchMs: Record<string, number> = {};
  // Where a pass of the last pass's shape is cheaper, each size is passed several times in a row:
  // the first pays for the change of shape, the last settled one is what a loop repeating that size pays.
  const settle = target.reusesGraphs === true;
  await target.reset();
  await target.evaluate(prefix, { outputs: "none" });
  // Rounds over every thread count and size, so that a burst of load on a shared machine hits
  // all of them alike (measured one thread count after another, a slow minute went wholly to one:
  // the default target's 1-token pass read 1.29 ms on 1 thread against 0.49 on 2, and plain
  // decoding ran on the slower count).
  const total = repeats * threads.length;
  let done = 0;
  const steady = threads.map(() => sizes.map((): number[] => [])), first = threads.map(() => sizes.map((): number[] => []));
  const batches = sizes.map((n) => Array.from({ length: n }, (_, i) => tok(ctx + i)));
  let spent = 0;
  const pass = async (i: number, t: number): Promise<number> => {
    const t0 = now();
    await target.evaluate(batches[i], { read, hidden: options.hidden, threads: t > 0 ? t : undefined });
    const dt = now() - t0;
    await target.truncate(ctx);
    spent += dt;
    return dt;
  };
  for (let r = -1; r < repeats; r++) { // round -1: untimed warm-up
    // The thread counts in turn, the order reversed every other round (the first after a change of count may differ).
    for (let u = 0; u < threads.length; u++) {
      const ti = r % 2 === 0 ? u : threads.length - 1 - u;
      // Sizes up in one block, down in the next: after a long pass a short one runs slower for
      // several passes (the default target's 1-token pass after a 33-token one, 1 thread: 1.10
      // 0.76 0.75 0.79 0.57 0.42, then 0.35-0.43 ms), so a 1-token pass comes right after a
      // 2-token one, or first after a block that went down. Each thread count goes up and down in turn.
      const up = ((r + 1) * threads.length + u) % 2 === 0;
      for (let j = 0; j < sizes.length; j++) {
        const i = up ? j : sizes.length - 1 - j;
        // A loop repeating a size pays the settled figure, not the first pass after the change.
        const changed = await pass(i, threads[ti]);
        let repeated = changed;
        if (settle) {
          // Settled: at least the third pass and SETTLE_MS after the change (a tiny model's pass
          // stays slow for several of its 0.3 ms passes), at most 16 passes.
          let since = changed;
          for (let k = 1; k < 16 && (k < 3 || since < SETTLE_MS); k++) since += repeated = await pass(i, threads[ti]);
        }
        if (r >= 0) {
          steady[ti][i].push(repeated);
          first[ti][i].push(changed);
        }
      }
      if (r >= 0) options.onProgress?.(++done, total);
    }
    if (r >= 2 && spent > 3000 * threads.length) break; // slow models: three rounds are enough
  }
  // Each size's median over the rounds: what a loop of such passes pays. (Not the fastest: a
  // one-token pass on 2 threads is fast at its best and slow on average. Not made non-decreasing
  // in n either: with llama.cpp on 2 threads a 2-token pass of the 100M twin costs less than a
  // 1-token pass — native llama-bench: pp1 93, pp2 222 tokens/s, 10.7 against 9.0 ms — and the
  // planner should then pad plain steps to 2 tokens.)
  for (const [ti, t] of threads.entries()) {
    const typical = steady[ti].map(median);
    ms[String(t)] = typical;
    if (settle) switchMs[String(t)] = median(first[ti].map((xs, i) => Math.max(0, median(xs) - typical[i])));
  }
  await target.reset();
  return { sizes, ms, contextLength: ctx, read, ...(options.hidden ? { hidden: true } : {}), ...(settle ? { switchMs } : {}) };
}

// compare.ts has the same median, but importing it here would close a cycle (compare → decode → planner).
function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** ms of a pass of n tokens at a thread count (linear between measured sizes, proportional past the last). */
export function costAt(table: PassCostTable, n: number, threads: string): number {
  const ms = table.ms[threads];
  const s = table.sizes;
  if (n <= s[0]) return ms[0];
  for (let i = 1; i < s.length; i++) {
    if (n <= s[i]) return ms[i - 1] + ((ms[i] - ms[i - 1]) * (n - s[i - 1])) / (s[i] - s[i - 1]);
  }
  return (ms[s.length - 1] * n) / s[s.length - 1];
}

/** The cheapest thread count for a pass of n tokens, and its cost. */
export function bestCost(table: PassCostTable, n: number): { threads: string; ms: number } {
  let best = { threads: Object.keys(table.ms)[0], ms: Infinity };
  for (const t of Object.keys(table.ms)) {
    const c = costAt(table, n, t);
    if (c < best.ms) best = { threads: t, ms: c };
  }
  return best;
}

/** Where measured tables are cached: $SPECDEC_CACHE, else $XDG_CACHE_HOME/specdec, else ~/.cache/specdec. */
export function cacheDir(): string {
  return process.env.SPECDEC_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "specdec");
}

/** A key for one model file × backend × settings × machine: a new file, backend or CPU measures anew. */
export function passCostKey(path: string, target: Target, extra: Record<string, unknown> = {}): string {
  const st = statSync(path);
  const cpu = cpus();
  // format 2: tables made non-decreasing in n when measured; 3: repeated-size passes and switchMs;
  // 4: rounds alternately up and down the sizes (format 3 overstated small passes after long
  // ones); 5: settled by time, medians over the rounds instead of minima, not made non-decreasing.
  const what = { format: 5, path, size: st.size, mtime: st.mtimeMs, backend: target.backend, kernels: target.kernels ?? null, context: target.contextSize, threads: target.threadCounts ?? null, cpu: cpu[0]?.model ?? "", cores: cpu.length, ...extra };
  return createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 24);
}

/** The cached table for `key`, or a fresh measurement (stored); `refresh` measures again. */
export async function cachedPassCost(key: string, measure: () => Promise<PassCostTable>, refresh = false): Promise<PassCostTable> {
  const dir = join(cacheDir(), "pass-cost");
  const file = join(dir, `${key}.json`);
  if (!refresh) {
    try {
      const t = JSON.parse(readFileSync(file, "utf8")) as PassCostTable;
      if (Array.isArray(t.sizes) && t.sizes[0] === 1 && t.ms && Object.values(t.ms).every((v) => Array.isArray(v) && v.length === t.sizes.length && v.every((x) => x > 0))) return t;
    } catch {
      // missing or unreadable: measure
    }
  }
  const table = await measure();
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(table));
    renameSync(`${file}.tmp`, file);
  } catch {
    // a read-only cache folder only costs a measurement next time
  }
  return table;
}
