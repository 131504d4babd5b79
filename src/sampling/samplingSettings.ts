import { SpecdecError } from "../errors.js";

/** How the next token is chosen. The same settings shape the target's and the drafter's distributions. */
export interface SamplingSettings {
  /** 0 = greedy (argmax). Default 0. */
  temperature: number;
  /** Keep the k most probable tokens; 0 = off. Default 0. */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 = off. Default 1. */
  topP: number;
  /** Drop tokens below minP × the top probability; 0 = off. Default 0. */
  minP: number;
  /** Seed of the random source. Default 0. */
  seed: number;
}

export const DEFAULT_SAMPLING: SamplingSettings = { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 };

export function resolveSampling(s: Partial<SamplingSettings> = {}): SamplingSettings {
  const r = { ...DEFAULT_SAMPLING, ...Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) } as SamplingSettings;
  if (!Number.isFinite(r.temperature) || r.temperature < 0) throw new SpecdecError(`temperature must be a number >= 0, got ${r.temperature}`);
  if (!Number.isInteger(r.topK) || r.topK < 0) throw new SpecdecError(`top-k must be an integer >= 0, got ${r.topK}`);
  if (!(r.topP > 0 && r.topP <= 1)) throw new SpecdecError(`top-p must be in (0, 1], got ${r.topP}`);
  if (!(r.minP >= 0 && r.minP < 1)) throw new SpecdecError(`min-p must be in [0, 1), got ${r.minP}`);
  if (!Number.isSafeInteger(r.seed)) throw new SpecdecError(`seed must be an integer, got ${r.seed}`);
  return r;
}

export function isGreedy(s: SamplingSettings): boolean {
  return s.temperature === 0;
}
