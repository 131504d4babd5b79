// Streaming detokenization: tokens go in one at a time, text comes out as soon as it is made of
// whole UTF-8 characters. A character split over several byte tokens waits for its last byte.

import type { Tokenizer } from "./types.js";

export interface TokenStreamOptions {
  /** As in detokenize: drop a leading BOS / trailing EOS that the model adds itself. */
  removeSpecial?: boolean;
  /** As in detokenize: render control tokens as their text. */
  unparseSpecial?: boolean;
}

/**
 * Incremental detokenizer. The concatenation of everything push() and flush() return equals
 * `tokenizer.detokenize(tokens, {...options, cleanSpaces: false})`: the clean-up of spaces
 * before punctuation looks ahead, so a stream never applies it (llama.cpp's streaming doesn't either).
 */
export class TokenTextDecoder {
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true }); // keep a leading U+FEFF, as detokenize does
  private first = true;
  private stripSpace: boolean;
  private heldEos = false;
  private readonly removeSpecial: boolean;
  private readonly unparseSpecial: boolean;

  constructor(private readonly tokenizer: Tokenizer, options: TokenStreamOptions = {}) {
    this.removeSpecial = options.removeSpecial ?? false;
    this.unparseSpecial = options.unparseSpecial ?? false;
    this.stripSpace = tokenizer.addSpacePrefix;
  }

  /** Feed one token; returns the text that is now complete (possibly ""). */
  push(token: number): string {
    const tk = this.tokenizer;
    if (this.first) {
      this.first = false;
      if (this.removeSpecial && tk.addBos && token === tk.bos) {
        this.stripSpace = false; // the prompt's own space prefix follows BOS: keep it
        return "";
      }
    }
    let out = "";
    if (this.heldEos) {
      this.heldEos = false;
      out += this.emit(tk.eos);
    }
    // An EOS is only dropped when it is the last token: hold it until we know.
    if (this.removeSpecial && tk.addEos && token === tk.eos) {
      this.heldEos = true;
      return out;
    }
    return out + this.emit(token);
  }

  /** End of stream: returns what is left (an unfinished character becomes U+FFFD). */
  flush(): string {
    this.heldEos = false;
    return this.utf8.decode();
  }

  private emit(token: number): string {
    let bytes = this.tokenizer.tokenPieceBytes(token, this.unparseSpecial);
    // SentencePiece's space prefix: the first piece loses one leading space, as in detokenize.
    if (this.stripSpace && bytes.length > 0 && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.stripSpace = false;
    return this.utf8.decode(bytes, { stream: true });
  }
}
