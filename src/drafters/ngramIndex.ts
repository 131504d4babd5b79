import type { Token } from "../types.js";

/**
 * Every n-gram (n = 1..maxNgram) of a growing token sequence, mapped to the positions right
 * after its occurrences, most recent first. It grows by the committed tokens only, so a lookup
 * costs O(n) — it never scans the context.
 */
export class NgramIndex {
  private readonly maps: Map<string, number[]>[] = []; // per n: n-gram key → continuation starts, newest first
  private indexed = 0; // context positions whose preceding n-grams are registered

  constructor(
    readonly maxNgram: number,
    /** Occurrences remembered per n-gram (the newest ones). */
    readonly maxOccurrences = 8,
  ) {
    for (let n = 0; n <= maxNgram; n++) this.maps.push(new Map());
  }

  /**
   * Register, for every new position j, the n-grams ending right before j (their continuation
   * starts at j). The end of the context itself is not registered: the current suffix must not
   * match itself.
   */
  extend(context: readonly Token[]): void {
    for (let j = Math.max(this.indexed, 1); j < context.length; j++) {
      for (let n = 1; n <= this.maxNgram && n <= j; n++) {
        const k = key(context, j - n, j);
        const list = this.maps[n].get(k);
        if (!list) this.maps[n].set(k, [j]);
        else {
          list.unshift(j);
          if (list.length > this.maxOccurrences) list.pop();
        }
      }
    }
    this.indexed = Math.max(this.indexed, context.length);
  }

  /** Where the last n tokens of `context` occurred before: continuation starts, newest first. */
  continuations(context: readonly Token[], n: number): readonly number[] {
    if (n < 1 || n > this.maxNgram || n > context.length - 1) return [];
    return this.maps[n].get(key(context, context.length - n, context.length)) ?? [];
  }
}

/**
 * The `length` tokens that followed an earlier occurrence starting at `start`. When they run
 * into the end of the context the text is repeating with period end - start: keep copying
 * from the continuation itself.
 */
export function continuation(context: readonly Token[], start: number, length: number): Token[] {
  const end = context.length;
  const out: Token[] = [];
  for (let j = start; out.length < length; j++) out.push(j < end ? context[j] : out[j - end]);
  return out;
}

function key(tokens: readonly Token[], from: number, to: number): string {
  let s = "" + tokens[from];
  for (let i = from + 1; i < to; i++) s += "," + tokens[i];
  return s;
}
