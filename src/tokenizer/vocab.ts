// Reads the tokenizer.ggml.* metadata of a GGUF file into a plain vocabulary: token texts,
// scores, attributes, merges and special ids, with llama.cpp's defaults and fix-ups applied.

import { excerpt, SpecdecError } from "../errors.js";
import { metaArray, metaNumber, metaString, metaValue, type GgufFile } from "../gguf/reader.js";

/** Token attributes, as llama.cpp derives them from tokenizer.ggml.token_type. */
export const Attr = {
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
} as const;

// GGUF token_type values (llama_token_type) -> attributes.
const TYPE_TO_ATTR: Record<number, number> = {
  1: Attr.NORMAL,
  2: Attr.UNKNOWN,
  3: Attr.CONTROL,
  4: Attr.USER_DEFINED,
  5: Attr.UNUSED,
  6: Attr.BYTE,
};

export type VocabKind = "spm" | "bpe" | "wpm";

export interface Vocab {
  readonly kind: VocabKind;
  readonly model: string;
  readonly pre: string;
  readonly texts: readonly string[];
  readonly scores: Float32Array;
  readonly attrs: Uint16Array;
  /** Text -> id; on duplicate texts the last id wins, as in llama.cpp. */
  readonly ids: ReadonlyMap<string, number>;
  /** "left right" -> merge rank (BPE only). */
  readonly mergeRanks: ReadonlyMap<string, number>;
  readonly bos: number;
  readonly eos: number;
  readonly eot: number;
  readonly eom: number;
  readonly unk: number;
  /** Separator ([SEP] of WordPiece), which WordPiece's tokenize({addSpecial}) appends when addSep. */
  readonly sep: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSep: boolean;
  readonly addSpacePrefix: boolean;
  /** BERT normalizer options (tokenizer.ggml.normalizer.*), used by WordPiece. */
  readonly wpmLowercase: boolean;
  readonly wpmStripAccents: boolean;
  /** Control/user-defined/unknown tokens, longest text first: matched inside raw text before tokenizing. */
  readonly specialTokens: readonly number[];
  readonly eog: ReadonlySet<number>;
}

/** Per pre-tokenizer flags that llama.cpp sets besides the split regexes. */
export interface PreFlags {
  cleanSpaces: boolean;
  ignoreMerges: boolean;
  addBos: boolean;
}

const NULL = -1;

// Texts that mark end-of-turn / end-of-generation tokens when the metadata does not name them.
const EOT_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>"];
const EOG_TEXTS = new Set([...EOT_TEXTS, "<|eom_id|>", "<|return|>", "<|call|>", "</s>"]);
const EOG_FIM_TEXTS = new Set(["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"]);

function stringArray(gguf: GgufFile, key: string): string[] | undefined {
  const a = metaArray(gguf, key);
  if (a === undefined) return undefined;
  if (!a.every((x) => typeof x === "string")) throw new SpecdecError(`${gguf.path}: metadata ${key} must be an array of strings`);
  return a as string[];
}

function numberArray(gguf: GgufFile, key: string, n: number): number[] | undefined {
  const a = metaArray(gguf, key);
  if (a === undefined) return undefined;
  if (a.length < n) throw new SpecdecError(`${gguf.path}: metadata ${key} has ${a.length} entries for ${n} tokens`);
  if (!a.every((x) => typeof x === "number")) throw new SpecdecError(`${gguf.path}: metadata ${key} must be an array of numbers`);
  return a as number[];
}

function metaBool(gguf: GgufFile, key: string): boolean | undefined {
  const v = metaValue(gguf, key);
  return typeof v === "boolean" ? v : undefined;
}

/**
 * Read the vocabulary. `preFlags` maps tokenizer.ggml.pre to its flags and throws for unknown names;
 * it is passed in so this file knows nothing about the split regexes.
 */
export function readVocab(gguf: GgufFile, preFlags: (pre: string) => PreFlags): Vocab {
  const model = metaString(gguf, "tokenizer.ggml.model");
  if (model === undefined) throw new SpecdecError(`${gguf.path}: no tokenizer in this GGUF file (tokenizer.ggml.model missing)`);
  let kind: VocabKind;
  if (model === "llama") kind = "spm";
  else if (model === "gpt2") kind = "bpe";
  else if (model === "bert") kind = "wpm";
  else {
    const names: Record<string, string> = { t5: "Unigram", rwkv: "RWKV", plamo2: "PLaMo-2", gemma4: "Gemma-4 BPE", none: "no vocabulary" };
    throw new SpecdecError(`${gguf.path}: tokenizer model '${excerpt(model)}'${names[model] ? ` (${names[model]})` : ""} is not supported (supported: llama, gpt2, bert)`);
  }

  const texts = stringArray(gguf, "tokenizer.ggml.tokens");
  if (texts === undefined || texts.length === 0) throw new SpecdecError(`${gguf.path}: tokenizer.ggml.tokens is missing or empty`);
  const n = texts.length;

  // Defaults differ per model type (llama.cpp llama_vocab::impl::load).
  let pre = metaString(gguf, "tokenizer.ggml.pre") ?? "default";
  // WordPiece: [CLS] 101 is BOS, no EOS, [UNK] 100, [SEP] 102 appended after the text.
  let bos = kind === "spm" ? 1 : kind === "wpm" ? 101 : 11;
  let eos = kind === "spm" ? 2 : kind === "wpm" ? NULL : 11;
  let unk = kind === "spm" ? 0 : kind === "wpm" ? 100 : NULL;
  let sep = kind === "wpm" ? 102 : NULL;
  let addBos = kind !== "bpe";
  let addSpacePrefix = kind === "spm";
  if (kind === "bpe") addBos = preFlags(pre).addBos;
  else pre = "default";

  const scores = new Float32Array(n);
  const scoreArr = numberArray(gguf, "tokenizer.ggml.scores", n);
  if (scoreArr) for (let i = 0; i < n; i++) scores[i] = scoreArr[i];

  const attrs = new Uint16Array(n).fill(Attr.NORMAL);
  const typeArr = numberArray(gguf, "tokenizer.ggml.token_type", n);
  if (typeArr) for (let i = 0; i < n; i++) attrs[i] = TYPE_TO_ATTR[typeArr[i]] ?? 0;

  const ids = new Map<string, number>();
  const fixedTexts = texts.slice();
  for (let i = 0; i < n; i++) {
    if (fixedTexts[i] === "") fixedTexts[i] = `[EMPTY_${i}]`;
    ids.set(fixedTexts[i], i);
  }

  const mergeRanks = new Map<string, number>();
  if (kind === "bpe") {
    const merges = stringArray(gguf, "tokenizer.ggml.merges");
    if (merges === undefined) throw new SpecdecError(`${gguf.path}: BPE tokenizer without tokenizer.ggml.merges`);
    // First rank wins for a repeated pair (std::unordered_map::emplace keeps the first).
    for (let i = 0; i < merges.length; i++) if (!mergeRanks.has(merges[i])) mergeRanks.set(merges[i], i);
  }

  const id = (key: string, dflt: number): number => {
    const v = metaNumber(gguf, `tokenizer.ggml.${key}`);
    if (dflt >= n) dflt = NULL;
    return v !== undefined && Number.isInteger(v) && v >= 0 && v < n ? v : dflt;
  };
  bos = id("bos_token_id", bos);
  eos = id("eos_token_id", eos);
  unk = id("unknown_token_id", unk);
  sep = id("seperator_token_id", sep); // sic: llama.cpp's key
  let eot = id("eot_token_id", NULL);
  let eom = id("eom_token_id", NULL);
  addBos = metaBool(gguf, "tokenizer.ggml.add_bos_token") ?? addBos;
  const addEos = metaBool(gguf, "tokenizer.ggml.add_eos_token") ?? false;
  const addSep = metaBool(gguf, "tokenizer.ggml.add_sep_token") ?? kind === "wpm";
  const wpmLowercase = metaBool(gguf, "tokenizer.ggml.normalizer.lowercase") ?? true;
  const wpmStripAccents = metaBool(gguf, "tokenizer.ggml.normalizer.strip_accents") ?? wpmLowercase;
  addSpacePrefix = metaBool(gguf, "tokenizer.ggml.add_space_prefix") ?? addSpacePrefix;

  // Well-known end tokens: found by text, and forced to control type so they never print as text.
  const control = (i: number) => (attrs[i] |= Attr.CONTROL);
  const eog = new Set<number>();
  for (const [text, i] of ids) {
    if (eot === NULL && EOT_TEXTS.includes(text)) {
      eot = i;
      control(i);
    }
    if (eom === NULL && text === "<|eom_id|>") {
      eom = i;
      control(i);
    }
    if (EOG_TEXTS.has(text)) {
      eog.add(i);
      control(i);
    }
    if (EOG_FIM_TEXTS.has(text) && attrs[i] & Attr.CONTROL) eog.add(i);
  }
  for (const t of [eos, eot, eom]) if (t !== NULL) eog.add(t);
  // Control tokens named "unused" are placeholders.
  for (let i = 0; i < n; i++) if (attrs[i] & Attr.CONTROL && fixedTexts[i].includes("unused")) attrs[i] |= Attr.UNUSED;

  const specialTokens: number[] = [];
  for (let i = 0; i < n; i++) if (attrs[i] & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) specialTokens.push(i);
  specialTokens.sort((a, b) => utf8Length(fixedTexts[b]) - utf8Length(fixedTexts[a]) || a - b);

  // Phi-3 strips whitespace after its special tokens (llama.cpp sets this by model name).
  const name = (metaString(gguf, "general.name") ?? "").toLowerCase();
  if (name.includes("phi-3") || name.includes("phi3")) {
    for (const i of specialTokens) attrs[i] |= Attr.RSTRIP;
    const set = (text: string, on: boolean) => {
      const i = ids.get(text);
      if (i !== undefined) attrs[i] = on ? attrs[i] | Attr.RSTRIP : attrs[i] & ~Attr.RSTRIP;
    };
    set("</s>", true);
    for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, false);
  }

  return { kind, model, pre, texts: fixedTexts, scores, attrs, ids, mergeRanks, bos, eos, eot, eom, unk, sep, addBos, addEos, addSep, addSpacePrefix, wpmLowercase, wpmStripAccents, specialTokens, eog };
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}
