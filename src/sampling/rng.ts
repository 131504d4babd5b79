import type { Rng } from "../types.js";

/**
 * A small seeded generator (SplitMix32-style mixing over a 32-bit counter state; passes the
 * usual smoke tests and is plenty for sampling). Deterministic for a given seed.
 */
export class SeededRng implements Rng {
  private state: number;

  constructor(seed: number) {
    this.state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }

  next(): number {
    let z = (this.state = (this.state + 0x9e3779b9) >>> 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    // 32 random bits → [0, 1); a second draw fills 53 bits so tiny probabilities are reachable.
    let w = (this.state = (this.state + 0x9e3779b9) >>> 0);
    w = Math.imul(w ^ (w >>> 16), 0x85ebca6b);
    w = Math.imul(w ^ (w >>> 13), 0xc2b2ae35);
    w = (w ^ (w >>> 16)) >>> 0;
    return (z * 2 ** 21 + (w >>> 11)) / 2 ** 53;
  }
}
