// Training a byte-level BPE tokenizer (GPT-2 style) on plain text, written as the
// tokenizer.ggml.* metadata of a GGUF file so that our tokenizer and llama.cpp both read it.
//
// Pre-tokenization is the "gpt-2" pre-tokenizer of preTokenizers.ts (the one llama.cpp selects
// for tokenizer.ggml.pre = "gpt-2"; llama.cpp does not know the name "gpt2", so that is what we
// write). Each word is counted once per occurrence; its UTF-8 bytes, in GPT-2's printable
// byte-to-unicode alphabet, are the initial symbols (tokens 0..255 are the 256 bytes, in byte
// order). Then, repeatedly, the most frequent adjacent pair of symbols over all words is merged
// into a new symbol (ties: the lower (left id, right id) pair first, so training is
// deterministic) until the vocabulary is full. Counts are kept incrementally: a merge only
// revisits the words that contain its pair (an index pair -> words), updates the counts of the
// pairs those words lose and gain, and a max-heap with lazy deletion finds the next best pair.
// A merge whose text already exists as a token (a·bc after ab·c) is still listed (it changes
// how words are cut) but adds no token. Finally the special token <|endoftext|> (control; BOS
// and EOS) is appended as the last id.

import { SpecdecError } from "../errors.js";
import type { GgufFile, GgufMetadataEntry } from "../gguf/reader.js";
import { kv, writeGguf, type GgufWriteEntry } from "../gguf/writer.js";
import { BYTE_TO_CHAR, byteEncode } from "../tokenizer/byteLevel.js";
import { wordSplitter } from "../tokenizer/preTokenizers.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";
import type { Tokenizer } from "../tokenizer/types.js";

/** The pre-tokenizer name written to tokenizer.ggml.pre (llama.cpp's name for GPT-2's regex). */
export const BPE_PRE = "gpt-2";
export const END_OF_TEXT = "<|endoftext|>";
/** Largest vocabulary: pair keys pack two ids into one number below 2^32. */
export const MAX_BPE_VOCAB = 65536;

export interface BpeTrainOptions {
  /** Total vocabulary size: 256 byte tokens + merges + 1 special token. */
  vocabSize: number;
  /** Called every `progressEvery` merges (default 100). */
  onProgress?(merges: number, total: number): void;
  progressEvery?: number;
}

export interface BpeTokenizerModel {
  readonly pre: string;
  /** Token texts (byte-level alphabet), id order. */
  readonly tokens: readonly string[];
  /** GGUF token types: 1 normal, 3 control. */
  readonly tokenTypes: readonly number[];
  /** "left right", in rank order. */
  readonly merges: readonly string[];
  readonly bos: number;
  readonly eos: number;
  /** Distinct words and total words seen in training. */
  readonly words: number;
  readonly wordOccurrences: number;
}

// A binary max-heap of (count, pair) entries, stored flat; best = higher count, then lower key.
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private better(i: number, j: number): boolean {
    const ci = this.counts[i], cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i], k = this.keys[i];
    this.counts[i] = this.counts[j];
    this.keys[i] = this.keys[j];
    this.counts[j] = c;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Remove the best entry, writing it to `out` ([count, key]); false when empty. */
  pop(out: [number, number]): boolean {
    const n = this.counts.length;
    if (n === 0) return false;
    out[0] = this.counts[0];
    out[1] = this.keys[0];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    if (n > 1) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      const m = n - 1;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < m && this.better(l, best)) best = l;
        if (r < m && this.better(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return true;
  }
}

const PAIR = MAX_BPE_VOCAB;
const pairKey = (a: number, b: number) => a * PAIR + b;

/** Train a byte-level BPE tokenizer on `text` (see the header). Deterministic. */
export function trainBpe(text: string, options: BpeTrainOptions): BpeTokenizerModel {
  const { vocabSize } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize > MAX_BPE_VOCAB)
    throw new SpecdecError(`vocabulary size must be an integer from 257 (256 bytes + ${END_OF_TEXT}) to ${MAX_BPE_VOCAB}, got ${vocabSize}`);
  const wantMerges = vocabSize - 257;

  // Word frequencies, in first-seen order (deterministic).
  const split = wordSplitter(BPE_PRE);
  const freq = new Map<string, number>();
  let occurrences = 0;
  for (const word of split(text)) {
    const enc = byteEncode(word);
    freq.set(enc, (freq.get(enc) ?? 0) + 1);
    occurrences++;
  }

  const tokens: string[] = BYTE_TO_CHAR.slice();
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => ids.set(t, i));

  const words: Int32Array[] = []; // symbols of each distinct word (length shrinks as it merges)
  const lens: number[] = [];
  const counts: number[] = [];
  for (const [w, c] of freq) {
    const syms = new Int32Array(w.length);
    for (let i = 0; i < w.length; i++) syms[i] = ids.get(w[i])!;
    words.push(syms);
    lens.push(w.length);
    counts.push(c);
  }

  // Pair counts and the words each pair occurs in (a superset: entries are not removed).
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  const lastWord = new Map<number, number>(); // to add a word to a pair's list once
  const addPairs = (w: number, sign: number, touched: Set<number>) => {
    const s = words[w], n = lens[w], c = counts[w] * sign;
    for (let i = 0; i + 1 < n; i++) {
      const k = pairKey(s[i], s[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      touched.add(k);
      if (sign > 0 && lastWord.get(k) !== w) {
        lastWord.set(k, w);
        let list = where.get(k);
        if (!list) where.set(k, (list = []));
        list.push(w);
      }
    }
  };
  const heap = new PairHeap();
  {
    const touched = new Set<number>();
    for (let w = 0; w < words.length; w++) addPairs(w, 1, touched);
    for (const k of touched) heap.push(pairCount.get(k)!, k);
  }

  const merges: string[] = [];
  const top: [number, number] = [0, 0];
  const every = options.progressEvery ?? 100;
  while (merges.length < wantMerges && heap.pop(top)) {
    const [count, key] = top;
    if (count <= 0 || pairCount.get(key) !== count) continue; // stale entry
    const a = Math.floor(key / PAIR), b = key % PAIR;
    const text = tokens[a] + tokens[b];
    let c = ids.get(text);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(text);
      ids.set(text, c);
    }
    merges.push(`${tokens[a]} ${tokens[b]}`);

    const touched = new Set<number>();
    for (const w of where.get(key)!) {
      const s = words[w], n = lens[w];
      let has = false;
      for (let i = 0; i + 1 < n; i++) if (s[i] === a && s[i + 1] === b) { has = true; break; }
      if (!has) continue;
      addPairs(w, -1, touched);
      let o = 0;
      for (let i = 0; i < n; i++) {
        if (i + 1 < n && s[i] === a && s[i + 1] === b) {
          s[o++] = c;
          i++;
        } else s[o++] = s[i];
      }
      lens[w] = o;
      addPairs(w, 1, touched);
    }
    for (const k of touched) {
      const v = pairCount.get(k)!;
      if (v > 0) heap.push(v, k);
      else pairCount.delete(k);
    }
    where.delete(key);
    if (options.onProgress && merges.length % every === 0) options.onProgress(merges.length, wantMerges);
  }

  const eot = tokens.length;
  tokens.push(END_OF_TEXT);
  const tokenTypes = tokens.map((_, i) => (i === eot ? 3 : 1));
  return { pre: BPE_PRE, tokens, tokenTypes, merges, bos: eot, eos: eot, words: freq.size, wordOccurrences: occurrences };
}

/** The tokenizer.* GGUF metadata entries of a trained tokenizer. */
export function bpeTokenizerEntries(m: BpeTokenizerModel): GgufWriteEntry[] {
  return [
    kv.string("tokenizer.ggml.model", "gpt2"),
    kv.string("tokenizer.ggml.pre", m.pre),
    kv.strings("tokenizer.ggml.tokens", m.tokens),
    kv.i32s("tokenizer.ggml.token_type", m.tokenTypes),
    kv.strings("tokenizer.ggml.merges", m.merges),
    kv.u32("tokenizer.ggml.bos_token_id", m.bos),
    kv.u32("tokenizer.ggml.eos_token_id", m.eos),
    kv.bool("tokenizer.ggml.add_bos_token", true),
    kv.bool("tokenizer.ggml.add_eos_token", false),
  ];
}

/** Our tokenizer over metadata entries held in memory (no file). */
export function tokenizerFromEntries(entries: readonly GgufWriteEntry[], name = "<trained tokenizer>"): Tokenizer {
  const metadata = new Map<string, GgufMetadataEntry>(entries.map((e) => [e.key, { type: e.type, value: e.value }]));
  const file: GgufFile = {
    path: name,
    version: 3,
    fileSize: 0,
    alignment: 32,
    dataOffset: 0,
    metadata,
    tensors: [],
    readTensorData: () => {
      throw new SpecdecError(`${name} has no tensors`);
    },
    close: () => {},
  };
  return loadTokenizer(file);
}

/** Write a vocabulary-only GGUF (general.architecture llama, no tensors). */
export function writeTokenizerGguf(path: string, m: BpeTokenizerModel, options: { overwrite?: boolean } = {}): void {
  const metadata = [kv.string("general.architecture", "llama"), kv.string("general.name", "specdec-bpe"), ...bpeTokenizerEntries(m)];
  writeGguf(path, { metadata, tensors: [], overwrite: options.overwrite });
}
