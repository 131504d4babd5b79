// The random source of one case: a generator seeded from (campaign seed, target, case index),
// so any case can be rebuilt alone from its id.

import { SeededRng } from "./specdec.js";

/** FNV-1a over the UTF-16 units of `s`: a 32-bit seed from a case's name. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class CaseRng {
  private readonly rng: SeededRng;

  constructor(seed: number, target: string, index: number) {
    this.rng = new SeededRng(hash32(`${seed}/${target}/${index}`));
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.rng.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.rng.next() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)];
  }

  /** One of `choices`, with probability proportional to its weight. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of choices) total += w;
    let x = this.rng.next() * total;
    for (const [c, w] of choices) {
      x -= w;
      if (x < 0) return c;
    }
    return choices[choices.length - 1][0];
  }
}
