// WordPiece as llama.cpp does it for `bert` vocabularies (llm_tokenizer_wpm):
//  1. BERT's normalizer and pre-tokenizer in one pass over the code points: each code point is
//     replaced by the first code point of its NFD decomposition (when accents are stripped), then
//     whitespace ends a word, control characters vanish, accent marks vanish (when stripped),
//     letters are lowercased (simple one-to-one mapping), and punctuation, ASCII symbols and CJK
//     ideographs each become a word of their own.
//  2. Each word, with "▁" in front (the GGUF vocabulary marks word starts with "▁" where the
//     Hugging Face one marks continuations with "##"), is cut greedily into the longest vocabulary
//     tokens from left to right. A word that cannot be cut completely becomes one unknown token.
// Unicode facts come from the JavaScript engine's own tables; llama.cpp's come from the UCD of
// the day it generated them (unicode-data.cpp). Checked code point by code point against those
// tables with Node 20.20 (Unicode 17): 171 code points differ, all assigned or recased in
// Unicode 16/17 (e.g. U+1ACF-U+1AEB, U+10D50-U+10D6E, U+16EA0-U+16EB8).

import { excerpt, SpecdecError } from "../errors.js";
import type { Vocab } from "./vocab.js";

export interface WpmNormalizer {
  /** tokenizer.ggml.normalizer.lowercase (default true). */
  lowercase: boolean;
  /** tokenizer.ggml.normalizer.strip_accents (default: as lowercase). */
  stripAccents: boolean;
}

/** Word start marker of the GGUF WordPiece vocabulary. */
const WORD_START = "\u2581";

// Unicode White_Space, as llama.cpp lists it.
const WHITESPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]);
// General categories Cc, Cf, Co, Cs (unassigned Cn does not count as control in llama.cpp).
const CONTROL = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u;
const MARK = /^\p{M}$/u;
const PUNCTUATION = /^\p{P}$/u;
const SYMBOL = /^\p{S}$/u;

// CJK ideograph blocks, as BERT's _is_chinese_char (with llama.cpp's 0x2B920 start of Extension E/F).
function isChineseChar(c: number): boolean {
  return (
    (c >= 0x4e00 && c <= 0x9fff) ||
    (c >= 0x3400 && c <= 0x4dbf) ||
    (c >= 0x20000 && c <= 0x2a6df) ||
    (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) ||
    (c >= 0x2b920 && c <= 0x2ceaf) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0x2f800 && c <= 0x2fa1f)
  );
}

const enum Kind {
  Space,
  Drop,
  Mark,
  Single, // punctuation, ASCII symbol, CJK ideograph: a word by itself
  Other,
}

// Per code point facts, computed once per distinct code point.
const infoCache = new Map<number, { kind: Kind; lower: string; text: string }>();

function classify(c: number): { kind: Kind; lower: string; text: string } {
  let info = infoCache.get(c);
  if (info === undefined) {
    const text = String.fromCodePoint(c);
    let kind: Kind;
    if (WHITESPACE.has(c)) kind = Kind.Space;
    else if (c === 0 || c === 0xfffd || CONTROL.test(text)) kind = Kind.Drop;
    else if (MARK.test(text)) kind = Kind.Mark;
    else if (PUNCTUATION.test(text) || (c < 0x7f && SYMBOL.test(text)) || isChineseChar(c)) kind = Kind.Single;
    else kind = Kind.Other;
    info = { kind, lower: simpleLower(c, text), text };
    if (infoCache.size >= 100_000) infoCache.clear();
    infoCache.set(c, info);
  }
  return info;
}

// UnicodeData's one-to-one lowercase mapping. toLowerCase() applies the full mappings, which differ
// only for U+0130 (İ -> i + U+0307), whose simple mapping is the first code point, 'i'.
function simpleLower(c: number, text: string): string {
  const l = text.toLowerCase();
  const first = l.codePointAt(0)!;
  return first === c ? text : String.fromCodePoint(first);
}

const nfdCache = new Map<number, number>();

/** The first code point of a code point's canonical decomposition (llama.cpp's per-code-point "NFD"). */
function nfdFirst(c: number): number {
  if (c < 0xc0) return c; // nothing below U+00C0 decomposes
  let d = nfdCache.get(c);
  if (d === undefined) {
    d = String.fromCodePoint(c).normalize("NFD").codePointAt(0)!;
    if (nfdCache.size >= 100_000) nfdCache.clear();
    nfdCache.set(c, d);
  }
  return d;
}

/** BERT's normalization and splitting of raw text into words (llama.cpp's preprocess). */
export function wpmPreprocess(text: string, opts: WpmNormalizer): string[] {
  const words: string[] = [];
  let word = "";
  const finish = () => {
    if (word !== "") words.push(word);
    word = "";
  };
  for (const ch of text) {
    let c = ch.codePointAt(0)!;
    if (opts.stripAccents) c = nfdFirst(c);
    const info = classify(c);
    switch (info.kind) {
      case Kind.Space:
        finish();
        break;
      case Kind.Drop:
        break;
      case Kind.Mark:
        if (!opts.stripAccents) word += opts.lowercase ? info.lower : info.text;
        break;
      case Kind.Single:
        finish();
        words.push(opts.lowercase ? info.lower : info.text);
        break;
      case Kind.Other:
        word += opts.lowercase ? info.lower : info.text;
        break;
    }
  }
  finish();
  return words;
}

export class WpmTokenizer {
  private readonly maxLen: number; // longest token text in UTF-16 code units
  private readonly opts: WpmNormalizer;

  constructor(private readonly vocab: Vocab) {
    let max = 0;
    for (const t of vocab.texts) if (t.length > max) max = t.length;
    this.maxLen = max;
    this.opts = { lowercase: vocab.wpmLowercase, stripAccents: vocab.wpmStripAccents };
  }

  /** Tokenize one fragment of raw text. Appends to `out`. */
  tokenize(text: string, out: number[]): void {
    const { ids } = this.vocab;
    for (const w of wpmPreprocess(text, this.opts)) {
      const word = WORD_START + w;
      const n = word.length;
      const start = out.length;
      for (let i = 0; i < n; ) {
        let found = -1;
        for (let j = Math.min(n, i + this.maxLen); j > i; j--) {
          const id = ids.get(word.slice(i, j));
          if (id !== undefined) {
            out.push(id);
            found = j;
            break;
          }
        }
        if (found < 0) {
          out.length = start; // the whole word becomes [UNK]
          break;
        }
        i = found;
      }
      if (out.length === start) {
        if (this.vocab.unk < 0) throw new SpecdecError(`WordPiece vocabulary has no unknown token for the word ${excerpt(JSON.stringify(w))}`);
        out.push(this.vocab.unk);
      }
    }
  }
}
