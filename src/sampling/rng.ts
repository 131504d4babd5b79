import type { Rng } from "../types.js";

/**
 * A small seeded generator (SplitMix32-style mixing over a 32-bit counter state; passes the
 * usual smoke tests and is plenty for sampling). Deterministic for a given seed; its whole state
 * is one u32 (`state`), so a training checkpoint saves it and a resumed run continues the same
 * stream.
 */
export class SeededRng implements Rng {
  private s: number; // u32 counter

  constructor(seed: number) {
    this.s = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }

  /** The whole state: setting what `state` gave continues the same stream. */
  get state(): number {
    return this.s;
  }
  set state(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`rng state must be a u32, got ${value}`);
    this.s = value;
  }

  /** 32 random bits. */
  nextU32(): number {
    let z = (this.s = (this.s + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in [0, 1): two draws fill 53 bits, so tiny probabilities are reachable. */
  next(): number {
    const z = this.nextU32(), w = this.nextU32();
    return (z * 2 ** 21 + (w >>> 11)) / 2 ** 53;
  }
}

/** Uniform integer in [0, n). */
export function uniformInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

/** Standard normal (Box–Muller, one value per call: two uniform draws). */
export function standardNormal(rng: Rng): number {
  const u = 1 - rng.next(), v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace(rng: Rng, a: Int32Array | number[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = uniformInt(rng, i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
