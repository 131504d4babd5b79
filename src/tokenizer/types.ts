// The public shape of a tokenizer, shared by the SPM and BPE implementations.

export interface TokenizeOptions {
  /** Add BOS/EOS as the model asks (tokenizer.ggml.add_bos_token / add_eos_token). Default false. */
  addSpecial?: boolean;
  /** Turn texts of control tokens (e.g. "<|eot_id|>") found in the text into those tokens. Default false.
   *  User-defined tokens are always matched, as llama.cpp does. */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /** Drop a leading BOS / trailing EOS when the model adds them itself. Default false. */
  removeSpecial?: boolean;
  /** Render control tokens as their text instead of nothing. Default false. */
  unparseSpecial?: boolean;
  /** Apply the model's clean-up of spaces before punctuation (BPE models that ask for it).
   *  Default: the model's own setting. */
  cleanSpaces?: boolean;
}

export interface Tokenizer {
  /** "llama" (SentencePiece), "gpt2" (byte-level BPE) or "bert" (WordPiece). */
  readonly model: string;
  /** tokenizer.ggml.pre, or "default". */
  readonly pre: string;
  readonly vocabSize: number;
  /** -1 when the model has none. */
  readonly bos: number;
  readonly eos: number;
  /** Tokens that end generation: eos, eot, eom and the well-known end-of-turn texts. */
  readonly eogTokens: ReadonlySet<number>;
  /** Whether tokenize({addSpecial: true}) prepends BOS / appends EOS. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SentencePiece's space before the first word: detokenize drops it again from the first piece. */
  readonly addSpacePrefix: boolean;
  tokenize(text: string, options?: TokenizeOptions): number[];
  /** The raw text of a token as stored in the vocabulary. */
  tokenText(token: number): string;
  /** The bytes a token stands for. Control tokens give their text when `special` (default true), else nothing. */
  tokenPieceBytes(token: number, special?: boolean): Uint8Array;
  detokenize(tokens: readonly number[], options?: DetokenizeOptions): string;
}
