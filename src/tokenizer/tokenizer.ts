// loadTokenizer: the tokenizer of a GGUF model, built from its tokenizer.ggml.* metadata.

import { SpecdecError } from "../errors.js";
import type { GgufFile } from "../gguf/reader.js";
import { BpeTokenizer } from "./bpe.js";
import { cleanSpaces, decodeOptions, joinPieces, pieceBytes } from "./detokenize.js";
import { preTokenizerFlags } from "./preTokenizers.js";
import { splitSpecial } from "./specialTokens.js";
import { spmTokenize } from "./spm.js";
import type { DetokenizeOptions, TokenizeOptions, Tokenizer } from "./types.js";
import { readVocab, type Vocab } from "./vocab.js";
import { WpmTokenizer } from "./wpm.js";

export function loadTokenizer(gguf: GgufFile): Tokenizer {
  const vocab = readVocab(gguf, preTokenizerFlags);
  return new GgufTokenizer(vocab);
}

// ignoreBOM: a U+FEFF the text began with is text (llama.cpp keeps it); the default would drop it.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

class GgufTokenizer implements Tokenizer {
  readonly model: string;
  readonly pre: string;
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly eogTokens: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  private readonly bpe?: BpeTokenizer;
  private readonly wpm?: WpmTokenizer;
  private readonly cleansSpaces: boolean;
  // Pieces with special=true, built on first use (a big vocabulary has 150k+ tokens).
  private readonly pieces: (Uint8Array | undefined)[];

  constructor(private readonly vocab: Vocab) {
    this.model = vocab.model;
    this.pre = vocab.pre;
    this.vocabSize = vocab.texts.length;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.eogTokens = vocab.eog;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
    this.addSpacePrefix = vocab.addSpacePrefix;
    if (vocab.kind === "bpe") this.bpe = new BpeTokenizer(vocab);
    if (vocab.kind === "wpm") this.wpm = new WpmTokenizer(vocab);
    // llama.cpp cleans up spaces for WordPiece always, for BPE as the pre-tokenizer says.
    this.cleansSpaces = vocab.kind === "wpm" || (vocab.kind === "bpe" && preTokenizerFlags(vocab.pre).cleanSpaces);
    this.pieces = new Array(this.vocabSize);
  }

  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    const { vocab } = this;
    const addSpecial = options.addSpecial ?? false;
    const out: number[] = [];
    if (addSpecial && vocab.addBos) {
      if (vocab.bos < 0) throw new SpecdecError("the model asks for a BOS token but has none");
      out.push(vocab.bos);
    }
    // SentencePiece adds a space before text that starts the prompt or follows a special token.
    let afterSpecial = true;
    for (const f of splitSpecial(vocab, text, options.parseSpecial ?? false)) {
      if (typeof f === "number") {
        out.push(f);
        afterSpecial = true;
      } else if (this.bpe) {
        this.bpe.tokenize(f, out);
      } else if (this.wpm) {
        this.wpm.tokenize(f, out);
      } else {
        const spaced = vocab.addSpacePrefix && afterSpecial ? " " + f : f;
        spmTokenize(vocab, spaced.replaceAll(" ", "▁"), out);
        afterSpecial = false;
      }
    }
    // WordPiece ends with [SEP] (BERT's "[CLS] text [SEP]"); llama.cpp adds no EOS there.
    if (this.wpm) {
      if (addSpecial && vocab.addSep) {
        if (vocab.sep < 0) throw new SpecdecError("the model asks for a separator token but has none");
        out.push(vocab.sep);
      }
    } else if (addSpecial && vocab.addEos) {
      if (vocab.eos < 0) throw new SpecdecError("the model asks for an EOS token but has none");
      out.push(vocab.eos);
    }
    return out;
  }

  tokenText(token: number): string {
    this.check(token);
    return this.vocab.texts[token];
  }

  tokenPieceBytes(token: number, special = true): Uint8Array {
    this.check(token);
    if (!special) return pieceBytes(this.vocab, token, false);
    return (this.pieces[token] ??= pieceBytes(this.vocab, token, true));
  }

  detokenize(tokens: readonly number[], options?: DetokenizeOptions): string {
    const o = decodeOptions(options, this.cleansSpaces);
    for (const t of tokens) this.check(t);
    const piece = (t: number) => this.tokenPieceBytes(t, o.unparseSpecial);
    const text = utf8Decoder.decode(joinPieces(this.vocab, piece, tokens, o.removeSpecial));
    return o.cleanSpaces ? cleanSpaces(text) : text;
  }

  private check(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) throw new SpecdecError(`token id ${token} is outside the vocabulary (0..${this.vocabSize - 1})`);
  }
}
