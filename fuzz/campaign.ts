// A fuzz campaign, the library entry (`npm run fuzz` and the fuzz test call it): share the
// cases among the targets, run them on a pool of worker processes, tally the outcomes per
// target, group the failures by signature and write reproducers for them.

import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { OPEN_ELSEWHERE } from "./knownIssues.js";
import { hasNonFiniteWeights } from "./nonFinite.js";
import { seedPaths } from "./seeds.js";
import { OUTCOMES, type Outcome } from "./outcome.js";
import { FuzzWorker, type CaseReport } from "./pool.js";
import { TARGETS } from "./targets/registry.js";
import { TARGET_NAMES, type TargetName } from "./targets/target.js";

/** Shares of the cases of `--target all`: the cheap in-process targets get most. */
// llama.cpp cases cost ~20 in-process ones (a model load through node-llama-cpp), CLI cases
// ~100 (a process start): 10^5 cases give 3,500 of the first and 500 of the second.
export const TARGET_WEIGHTS: Readonly<Record<TargetName, number>> = { reader: 40, tokenizer: 30, builtin: 26, llamacpp: 3.5, cli: 0.5 };

export interface CampaignOptions {
  seed: number;
  /** Total cases, shared among `targets` by TARGET_WEIGHTS. */
  cases: number;
  targets: readonly TargetName[];
  /** Worker processes (default: the CPU count, at most 4). */
  workers?: number;
  /** Resident memory one worker may reach during a case (default 1536 MiB). */
  memoryMiB?: number;
  /** Where reproducers go (default: <tmp>/specdec-fuzz/seed-<seed>); undefined-or-false to write none. */
  reproducerDir?: string | false;
  /** Reproducers written per failure signature (default 3). */
  reproducersPerSignature?: number;
  /** Count the cases of OPEN_ELSEWHERE apart (default true); false counts them as the failures they are. */
  separateKnown?: boolean;
  onProgress?: (done: number, total: number, tallies: Readonly<Record<TargetName, TargetTally>>) => void;
}

export interface TargetTally {
  cases: number;
  outcomes: Record<Outcome, number>;
  /** Failures of OPEN_ELSEWHERE, by issue id (not counted in `outcomes`). */
  known: Record<string, number>;
  totalMs: number;
  slowestMs: number;
  peakMiB: number;
}

export interface FailureGroup {
  target: TargetName;
  outcome: Outcome;
  signature: string;
  /** The OPEN_ELSEWHERE issue id, when the failure is one of those. */
  known?: string;
  count: number;
  examples: CaseReport[];
  reproducers: string[];
}

export interface CampaignResult {
  seed: number;
  cases: number;
  tallies: Record<TargetName, TargetTally>;
  failures: FailureGroup[];
  wallMs: number;
  peakMiB: number;
  workers: number;
  workerStarts: number;
  reproducerDir?: string;
}

export const FAILURES: readonly Outcome[] = ["crash", "hang", "memory", "wrong"];

/** Case counts per target: `total` shared by weight, every target getting at least one. */
export function shareCases(total: number, targets: readonly TargetName[]): Record<TargetName, number> {
  const w = targets.reduce((a, t) => a + TARGET_WEIGHTS[t], 0);
  const counts = Object.fromEntries(TARGET_NAMES.map((t) => [t, 0])) as Record<TargetName, number>;
  let left = total;
  targets.forEach((t, i) => {
    const n = i === targets.length - 1 ? left : Math.max(1, Math.round((total * TARGET_WEIGHTS[t]) / w));
    counts[t] = Math.min(n, left);
    left -= counts[t];
  });
  return counts;
}

/** The cases in run order: the targets interleaved in proportion (smooth weighted round robin). */
function schedule(counts: Record<TargetName, number>): { target: TargetName; index: number }[] {
  const out: { target: TargetName; index: number }[] = [];
  const next = Object.fromEntries(TARGET_NAMES.map((t) => [t, 0])) as Record<TargetName, number>;
  const total = TARGET_NAMES.reduce((a, t) => a + counts[t], 0);
  for (let i = 0; i < total; i++) {
    let best: TargetName | undefined;
    let deficit = -Infinity;
    for (const t of TARGET_NAMES) {
      if (next[t] >= counts[t]) continue;
      const d = ((i + 1) * counts[t]) / total - next[t];
      if (d > deficit) [best, deficit] = [t, d];
    }
    out.push({ target: best!, index: next[best!]++ });
  }
  return out;
}

const emptyTally = (): TargetTally => ({ cases: 0, outcomes: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>, known: {}, totalMs: 0, slowestMs: 0, peakMiB: 0 });

/** What groups failures: the outcome and the detail with paths, numbers and quoted text blurred. */
function signature(r: CaseReport): string {
  return r.verdict.detail
    .replace(/\\u[0-9a-f]{4}|\\[bfnrt]/g, "")
    .replace(/\/[^\s:'"]*\//g, "…/")
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\d+/g, "N")
    .slice(0, 120);
}

function scratchRoot(): string {
  const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir(); // case files are rewritten constantly: memory beats disk
  return join(base, `specdec-fuzz-${process.pid}-${Date.now().toString(36)}`);
}

/** Rebuild case `r` and check its file for NaN/Inf weights (see knownIssues.ts). */
function caseHasNonFiniteWeights(scratch: string, seed: number, r: CaseReport): boolean {
  const c = TARGETS[r.target].build(seed, Number(r.id.split(":")[1]));
  if (!c.file) return false;
  const path = join(scratch, "known-check.gguf");
  writeFileSync(path, c.file);
  return hasNonFiniteWeights(path);
}

/** Rebuild a failing case in this process and write its file and a description. */
function writeReproducer(dir: string, seed: number, r: CaseReport): string {
  const c = TARGETS[r.target].build(seed, Number(r.id.split(":")[1]));
  const stem = join(dir, r.id.replace(":", "-"));
  const info = {
    id: r.id,
    seed,
    seedFile: c.seedName,
    what: c.what,
    verdict: r.verdict,
    file: c.file ? `${stem}.gguf` : undefined,
    reproduce: `npm run fuzz -- --seed ${seed} --reproduce ${r.id}`,
  };
  if (c.file) writeFileSync(`${stem}.gguf`, c.file);
  writeFileSync(`${stem}.json`, JSON.stringify(info, null, 2) + "\n");
  return `${stem}.json`;
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  seedPaths("all"); // fails here, loudly, when the shared data is missing (not once per case in the workers)
  const counts = shareCases(o.cases, o.targets);
  const queue = schedule(counts);
  const workers = Math.max(1, Math.min(o.workers ?? Math.min(4, availableParallelism()), queue.length));
  const memoryMiB = o.memoryMiB ?? 1536;
  const separateKnown = o.separateKnown ?? true;
  const reproducerDir = o.reproducerDir === false ? undefined : (o.reproducerDir ?? join(tmpdir(), "specdec-fuzz", `seed-${o.seed}`));
  const perSignature = o.reproducersPerSignature ?? 3;

  const tallies = Object.fromEntries(TARGET_NAMES.map((t) => [t, emptyTally()])) as Record<TargetName, TargetTally>;
  const groups = new Map<string, FailureGroup>();
  const root = scratchRoot();
  mkdirSync(root, { recursive: true });
  const pool = Array.from({ length: workers }, (_, i) => new FuzzWorker(i, root, { memoryMiB }));
  const t0 = performance.now();
  let done = 0;
  let next = 0;

  const record = (r: CaseReport) => {
    const t = tallies[r.target];
    t.cases++;
    t.totalMs += r.ms;
    t.slowestMs = Math.max(t.slowestMs, r.ms);
    t.peakMiB = Math.max(t.peakMiB, r.peakMiB);
    let nonFinite: boolean | undefined;
    const nonFiniteWeights = () => (nonFinite ??= caseHasNonFiniteWeights(root, o.seed, r));
    const known = separateKnown && FAILURES.includes(r.verdict.outcome) ? OPEN_ELSEWHERE.find((k) => k.matches(r, r.verdict, nonFiniteWeights))?.id : undefined;
    if (known) t.known[known] = (t.known[known] ?? 0) + 1;
    else t.outcomes[r.verdict.outcome]++;
    if (!FAILURES.includes(r.verdict.outcome)) return;
    const key = `${r.target}|${r.verdict.outcome}|${known ?? ""}|${signature(r)}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { target: r.target, outcome: r.verdict.outcome, signature: signature(r), known, count: 0, examples: [], reproducers: [] }));
    g.count++;
    if (g.examples.length < perSignature) {
      g.examples.push(r);
      if (reproducerDir) {
        mkdirSync(reproducerDir, { recursive: true });
        try {
          g.reproducers.push(writeReproducer(reproducerDir, o.seed, r));
        } catch (e) {
          // A reproducer that cannot be rebuilt must not stop this worker's share of the campaign.
          g.reproducers.push(`(not written: ${String((e as Error)?.message ?? e).split("\n")[0]})`);
        }
      }
    }
  };

  try {
    await Promise.all(
      pool.map(async (w) => {
        while (next < queue.length) {
          const { target, index } = queue[next++];
          record(await w.run(o.seed, target, index, TARGETS[target].timeLimitMs));
          o.onProgress?.(++done, queue.length, tallies);
        }
      }),
    );
  } finally {
    for (const w of pool) w.close();
    // Give the workers a moment to remove their own folders, then remove whatever is left.
    await new Promise((r) => setTimeout(r, 200));
    rmSync(root, { recursive: true, force: true });
  }
  const failures = [...groups.values()].sort((a, b) => Number(a.known !== undefined) - Number(b.known !== undefined) || b.count - a.count);
  return {
    seed: o.seed,
    cases: queue.length,
    tallies,
    failures,
    wallMs: performance.now() - t0,
    peakMiB: Math.max(0, ...TARGET_NAMES.map((t) => tallies[t].peakMiB)),
    workers,
    workerStarts: pool.reduce((a, w) => a + w.starts, 0),
    reproducerDir: reproducerDir && groups.size > 0 ? reproducerDir : undefined,
  };
}
