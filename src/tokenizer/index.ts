// Tokenizers of our own inference engine, built from GGUF metadata.
export { loadTokenizer } from "./tokenizer.js";
export { TokenTextDecoder, type TokenStreamOptions } from "./stream.js";
export type { Tokenizer, TokenizeOptions, DetokenizeOptions } from "./types.js";
