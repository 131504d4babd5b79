// Byte-level BPE as llama.cpp does it for `gpt2` vocabularies: cut the text into words with the
// model's pre-tokenizer, map each word's bytes to GPT-2's printable characters, then merge
// adjacent symbols by merge rank (lowest first, leftmost on ties) until no listed pair is left.

import { Heap } from "./heap.js";
import { byteEncode } from "./byteLevel.js";
import { preTokenizerFlags, wordSplitter, type WordSplitter } from "./preTokenizers.js";
import type { Vocab } from "./vocab.js";

interface Bigram {
  left: number;
  right: number;
  rank: number;
  leftLen: number; // lengths when queued, to spot pairs made stale by other merges
  rightLen: number;
}

const first = (a: Bigram, b: Bigram) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

// Words repeat a lot in real text; remembering their tokens makes long texts several times faster.
const CACHE_LIMIT = 100_000;

export class BpeTokenizer {
  private readonly split: WordSplitter;
  private readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, readonly number[]>();

  constructor(private readonly vocab: Vocab) {
    this.split = wordSplitter(vocab.pre);
    this.ignoreMerges = preTokenizerFlags(vocab.pre).ignoreMerges;
  }

  /** Tokenize one fragment of raw text. Appends to `out`. */
  tokenize(text: string, out: number[]): void {
    for (const word of this.split(text)) {
      const encoded = byteEncode(word);
      let ids = this.cache.get(encoded);
      if (ids === undefined) {
        ids = this.word(encoded);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(encoded, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private word(word: string): number[] {
    const { ids, mergeRanks } = this.vocab;
    // Llama 3 style vocabularies take a whole word that is a token as is.
    if (this.ignoreMerges) {
      const id = ids.get(word);
      if (id !== undefined) return [id];
    }
    // Byte-encoded characters are all in the BMP: one symbol per UTF-16 unit.
    const count = word.length;
    const len = new Array<number>(count).fill(1);
    const prev = Array.from({ length: count }, (_, i) => i - 1);
    const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));

    const queue = new Heap<Bigram>(first);
    const tryPair = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const rank = mergeRanks.get(word.substr(left, len[left]) + " " + word.substr(right, len[right]));
      if (rank !== undefined) queue.push({ left, right, rank, leftLen: len[left], rightLen: len[right] });
    };
    for (let i = 1; i < count; i++) tryPair(i - 1, i);

    for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
      const { left, right } = b;
      if (len[left] !== b.leftLen || len[right] !== b.rightLen || len[left] === 0 || len[right] === 0) continue;
      len[left] += len[right];
      len[right] = 0;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryPair(prev[left], left);
      tryPair(left, next[left]);
    }

    const out: number[] = [];
    for (let i = count > 0 ? 0 : -1; i !== -1; i = next[i]) {
      const piece = word.substr(i, len[i]);
      const id = ids.get(piece);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // Not a token: fall back to single-character tokens, as llama.cpp does (it can only
      // find the ASCII ones; other characters are dropped).
      for (const ch of piece) {
        const single = ch.charCodeAt(0) < 0x80 ? ids.get(ch) : undefined;
        if (single !== undefined) out.push(single);
      }
    }
    return out;
  }
}
