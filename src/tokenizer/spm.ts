// SentencePiece-style tokenization as llama.cpp does it for `llama` vocabularies: start from
// single characters, repeatedly merge the adjacent pair whose joined text is the vocabulary
// token with the highest score (leftmost on ties), then spell any leftover piece that is not
// a token as byte tokens <0xNN>.

import { SpecdecError } from "../errors.js";
import { Heap } from "./heap.js";
import type { Vocab } from "./vocab.js";

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number; // joined length, to spot pairs made stale by other merges
}

const first = (a: Bigram, b: Bigram) => a.score > b.score || (a.score === b.score && a.left < b.left);

/** Tokenize one fragment; spaces must already be escaped as '▁'. Appends to `out`. */
export function spmTokenize(vocab: Vocab, text: string, out: number[]): void {
  // Symbols: one per code point, in a doubly linked list so merges are O(1).
  const start = new Int32Array(text.length);
  const len = new Int32Array(text.length);
  let count = 0;
  for (let i = 0; i < text.length; count++) {
    const n = text.codePointAt(i)! > 0xffff ? 2 : 1;
    start[count] = i;
    len[count] = n;
    i += n;
  }
  const prev = new Int32Array(count);
  const next = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }

  const queue = new Heap<Bigram>(first);
  const tryPair = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const size = len[left] + len[right];
    const id = vocab.ids.get(text.substr(start[left], size));
    if (id !== undefined) queue.push({ left, right, score: vocab.scores[id], size });
  };
  for (let i = 1; i < count; i++) tryPair(i - 1, i);

  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const { left, right } = b;
    if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== b.size) continue;
    len[left] += len[right];
    len[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryPair(prev[left], left);
    tryPair(left, next[left]);
  }

  for (let i = count > 0 ? 0 : -1; i !== -1; i = next[i]) {
    const piece = text.substr(start[i], len[i]);
    const id = vocab.ids.get(piece);
    if (id !== undefined) out.push(id);
    else for (const byte of Buffer.from(piece, "utf8")) out.push(byteToken(vocab, byte));
  }
}

function byteToken(vocab: Vocab, byte: number): number {
  const hex = byte.toString(16).toUpperCase().padStart(2, "0");
  const id = vocab.ids.get(`<0x${hex}>`) ?? (byte < 0x80 ? vocab.ids.get(String.fromCharCode(byte)) : undefined);
  if (id !== undefined) return id;
  // llama.cpp aborts here; the unknown token is the gentler answer when the vocabulary has one.
  if (vocab.unk >= 0) return vocab.unk;
  throw new SpecdecError(`vocabulary has no byte token <0x${hex}> and no unknown token: cannot tokenize this text`);
}
