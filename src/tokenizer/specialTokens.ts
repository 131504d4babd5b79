// Splits raw text around the texts of special tokens before the model's tokenizer sees it, as
// llama.cpp's tokenizer_st_partition does: longest special text first, every occurrence, with
// the optional whitespace stripping of lstrip/rstrip tokens.

import { Attr, type Vocab } from "./vocab.js";

export type Fragment = string | number; // raw text, or an already-decided token id

// C isspace(): what llama.cpp strips next to lstrip/rstrip tokens.
const isCSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";

export function splitSpecial(vocab: Vocab, text: string, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text === "" ? [] : [text];
  for (const id of vocab.specialTokens) {
    const attr = vocab.attrs[id];
    // Control and unknown tokens only count when asked; user-defined ones always do.
    if (!parseSpecial && attr & (Attr.CONTROL | Attr.UNKNOWN)) continue;
    const needle = vocab.texts[id];
    if (!text.includes(needle)) continue;
    const next: Fragment[] = [];
    for (const f of fragments) {
      if (typeof f === "number") {
        next.push(f);
        continue;
      }
      let pos = 0;
      for (;;) {
        const at = f.indexOf(needle, pos);
        if (at < 0) {
          if (pos < f.length) next.push(f.slice(pos));
          break;
        }
        let leftEnd = at;
        if (attr & Attr.LSTRIP) while (leftEnd > pos && isCSpace(f[leftEnd - 1])) leftEnd--;
        if (leftEnd > pos) next.push(f.slice(pos, leftEnd));
        next.push(id);
        pos = at + needle.length;
        if (attr & Attr.RSTRIP) while (pos < f.length && isCSpace(f[pos])) pos++;
      }
    }
    fragments = next;
  }
  return fragments;
}
