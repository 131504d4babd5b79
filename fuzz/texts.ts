// Random text for tokenizer round trips: words, runs of whitespace, punctuation and digits,
// accented and combining characters, CJK, emoji and ZWJ sequences, byte order marks, control
// characters, NUL, lone surrogates, and the texts of the vocabulary's own tokens (special
// tokens included), glued together in random order.

import type { CaseRng } from "./random.js";

const POOLS: readonly (readonly string[])[] = [
  ["Once", "upon", "a", "time", "the", "hello", "world", "Lily", "it's", "don't", "I'll", "HELLO", "camelCase", "snake_case", "x"],
  [" ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", " \n ", "\u00a0", "\u3000", "\u2028", "\v", "\f"],
  [".", ",", "!", "?", "'", "\"", "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\", "-", "--", "...", "$", "%", "&", "#", "@", "~", "`", "^", "|", "+", "=", "*", "_"],
  ["0", "1", "42", "123", "1234", "3.14", "1e9", "-7", "007", "١٢٣", "Ⅻ"],
  ["é", "ü", "ñ", "ç", "Å", "ß", "ø", "İ", "ı", "ﬁ", "e\u0301", "a\u0308", "\u0301", "Ω", "Ж", "ж", "λ", "ש", "مرحبا", "नमस्ते", "ไทย"],
  ["你好", "世界", "日本語", "한국어", "カタカナ", "ｆｕｌｌ", "〜", "、", "。"],
  ["😀", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "🇫🇷", "𝔘𝔫𝔦", "𐍈", "\u{10ffff}", "\u{1f600}\u{fe0f}"],
  ["\ufeff", "\ufffd", "\u200b", "\u200d", "\u2060", "\u00ad", "\ufe0f", "\u202e", "\u0000", "\u0001", "\u001b", "\u007f", "\u0085", "\ud800", "\udfff", "\ud83d"],
];

/** A random text of up to ~`maxPieces` pieces; `vocabPieces` are token texts to mix in. */
export function randomText(rng: CaseRng, vocabPieces: readonly string[], maxPieces = 24): string {
  const n = rng.int(maxPieces + 1);
  let s = rng.chance(0.1) ? "\ufeff" : ""; // a leading byte order mark must survive too
  for (let i = 0; i < n; i++) {
    if (vocabPieces.length > 0 && rng.chance(0.2)) s += rng.pick(vocabPieces);
    else s += rng.pick(rng.pick(POOLS));
  }
  return s;
}

/** Random token ids, mostly inside the vocabulary, sometimes not (negative, too large, fractional). */
export function randomIds(rng: CaseRng, vocabSize: number, max = 16): number[] {
  const n = rng.int(max + 1);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(rng.chance(0.97) ? rng.int(Math.max(1, vocabSize)) : rng.pick([-1, vocabSize, vocabSize + 1, 2 ** 31, 0.5, NaN]));
  return ids;
}
