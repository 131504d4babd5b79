// Tokens back to bytes and text, following llama.cpp's token_to_piece and detokenize.

import { byteDecode } from "./byteLevel.js";
import type { DetokenizeOptions } from "./types.js";
import { Attr, type Vocab } from "./vocab.js";

const EMPTY = new Uint8Array(0);
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));

/** The bytes one token stands for, `special` deciding whether control/unknown tokens show their text. */
export function pieceBytes(vocab: Vocab, token: number, special: boolean): Uint8Array {
  const attr = vocab.attrs[token];
  const text = vocab.texts[token];
  if (attr & (Attr.CONTROL | Attr.UNKNOWN)) return special ? utf8(text) : EMPTY;
  if (attr & Attr.USER_DEFINED) return utf8(text);
  if (attr & Attr.BYTE) return Uint8Array.of(parseInt(text.slice(3, 5), 16));
  if (attr & Attr.NORMAL) return vocab.kind === "bpe" ? byteDecode(text) : utf8(text.replaceAll("▁", " ")); // spm, wpm: '▁' is a space
  return EMPTY; // unused or undefined tokens print nothing
}

/** The bytes of `tokens` as llama.cpp's detokenize joins them, before clean-up of spaces. */
export function joinPieces(vocab: Vocab, piece: (t: number) => Uint8Array, tokens: readonly number[], removeSpecial: boolean): Uint8Array {
  let from = 0;
  let to = tokens.length;
  let stripSpace = vocab.addSpacePrefix;
  if (removeSpecial && vocab.addBos && to > 0 && tokens[0] === vocab.bos) {
    stripSpace = false;
    from++;
  }
  if (removeSpecial && vocab.addEos && to > from && tokens[to - 1] === vocab.eos) to--;
  const parts: Uint8Array[] = [];
  for (let i = from; i < to; i++) {
    let p = piece(tokens[i]);
    if (stripSpace && p.length > 0 && p[0] === 0x20) p = p.subarray(1);
    stripSpace = false;
    parts.push(p);
  }
  return Buffer.concat(parts);
}

/** llama.cpp's clean_up_tokenization_spaces: " ?" -> "?", " ' " -> "'", " 's" -> "'s", ... */
export function cleanSpaces(text: string): string {
  let s = text.replace(/ ([?!.,])/g, "$1");
  s = dropLoneApostropheSpaces(s);
  return s.replace(/ '(s|m|re|ve)/g, "'$1");
}

// " ' " -> "'", scanning left to right like llama.cpp (a removed space can't start another match).
function dropLoneApostropheSpaces(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === " " && s[i + 1] === "'" && s[i + 2] === " " && i + 2 < s.length) {
      out += "'";
      i += 2;
    } else out += s[i];
  }
  return out;
}

export function decodeOptions(o: DetokenizeOptions | undefined, modelCleans: boolean) {
  return {
    removeSpecial: o?.removeSpecial ?? false,
    unparseSpecial: o?.unparseSpecial ?? false,
    cleanSpaces: o?.cleanSpaces ?? modelCleans,
  };
}
