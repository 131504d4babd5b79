// Pre-tokenizers of byte-level BPE models: the regexes that cut text into words before the
// merges run, chosen by tokenizer.ggml.pre (regexes and flags as in llama.cpp's llama-vocab.cpp).
// Like llama.cpp, the regexes of one model run in sequence: each one cuts every piece the
// previous ones left, and text a regex does not match stays as a piece of its own.

import { excerpt, SpecdecError } from "../errors.js";
import type { PreFlags } from "./vocab.js";

// llama.cpp's whitespace set (Unicode White_Space), used for \s instead of JavaScript's own:
// it has U+0085 and lacks U+FEFF.
const WS = String.raw`\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;

/** Compile a regex written with \s / \S, swapping in llama.cpp's whitespace set. */
function compile(source: string): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\" && (source[i + 1] === "s" || source[i + 1] === "S")) {
      const negate = source[i + 1] === "S";
      if (inClass && negate) throw new Error(`\\S inside a class is not supported: ${source}`);
      out += inClass ? WS : negate ? `[^${WS}]` : `[${WS}]`;
      i++;
      continue;
    }
    if (c === "\\") {
      out += c + source[i + 1];
      i++;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    out += c;
  }
  return new RegExp(out, "gu");
}

const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
const LLAMA3 = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2 = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const CJK = String.raw`[一-龥ࠀ-一가-퟿]+`;

const FAMILIES: Record<string, readonly string[]> = {
  default: [String.raw`[\p{P}$+<=>^~|]+`, GPT2, String.raw`\p{N}+`, "[0-9][0-9][0-9]"],
  gpt2: [GPT2],
  llama3: [LLAMA3],
  qwen2: [QWEN2],
  falcon: [String.raw`[\p{P}$+<=>^~|\x60]+`, GPT2, "[0-9][0-9][0-9]"],
  starcoder: [String.raw`\p{N}`, GPT2],
  "deepseek-llm": [
    String.raw`[\r\n]`,
    String.raw`\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+`,
    String.raw`\s?[!-/:-~！-／：-～‘-‟　-。]+`,
    String.raw`\s+$`,
    CJK,
    String.raw`\p{N}+`,
  ],
  "deepseek-coder": [String.raw`[\r\n]`, String.raw`\s?\p{L}+`, String.raw`\s?\p{P}+`, CJK, String.raw`\p{N}`],
};

interface PreSpec extends PreFlags {
  family: keyof typeof FAMILIES;
}

const spec = (family: string, flags: Partial<PreFlags> = {}): PreSpec => ({ family, cleanSpaces: true, ignoreMerges: false, addBos: false, ...flags });
const LLAMA3_SPEC = spec("llama3", { ignoreMerges: true, addBos: true });
const NO_CLEAN = { cleanSpaces: false };

// tokenizer.ggml.pre -> regex family and flags.
const PRE: Record<string, PreSpec> = {
  default: spec("default"),
  llama3: LLAMA3_SPEC, "llama-v3": LLAMA3_SPEC, "llama-bpe": LLAMA3_SPEC, falcon3: LLAMA3_SPEC, pixtral: LLAMA3_SPEC,
  dbrx: spec("llama3"), "smaug-bpe": spec("llama3"),
  "deepseek-llm": spec("deepseek-llm", NO_CLEAN),
  "deepseek-coder": spec("deepseek-coder", NO_CLEAN),
  falcon: spec("falcon"),
  mpt: spec("gpt2"), olmo: spec("gpt2"), jais: spec("gpt2"),
  "gpt-2": spec("gpt2"), "phi-2": spec("gpt2"), "jina-es": spec("gpt2"), "jina-de": spec("gpt2"),
  "jina-v2-es": spec("gpt2"), "jina-v2-de": spec("gpt2"), "roberta-bpe": spec("gpt2"),
  starcoder: spec("starcoder"), refact: spec("starcoder"), codeshell: spec("starcoder"), exaone: spec("starcoder"),
  "minerva-7b": spec("starcoder"),
  "command-r": spec("starcoder", NO_CLEAN), smollm: spec("starcoder", NO_CLEAN),
  qwen2: spec("qwen2", NO_CLEAN), "deepseek-r1-qwen": spec("qwen2", NO_CLEAN), stablelm2: spec("qwen2"), megrez: spec("qwen2"),
};

/** The flags llama.cpp sets for a pre-tokenizer name; throws for names we don't know. */
export function preTokenizerFlags(pre: string): PreFlags {
  return preSpec(pre);
}

function preSpec(pre: string): PreSpec {
  const s = PRE[pre];
  if (!s) throw new SpecdecError(`pre-tokenizer '${excerpt(pre)}' (tokenizer.ggml.pre) is not supported; supported: ${Object.keys(PRE).join(", ")}`);
  return s;
}

export type WordSplitter = (text: string) => string[];

/** A function that cuts text into the words that BPE merges run on. */
export function wordSplitter(pre: string): WordSplitter {
  const regexes = FAMILIES[preSpec(pre).family].map(compile);
  return (text) => {
    let pieces = [text];
    for (const re of regexes) {
      const next: string[] = [];
      for (const piece of pieces) {
        let last = 0;
        for (const m of piece.matchAll(re)) {
          if (m[0].length === 0) continue;
          if (m.index > last) next.push(piece.slice(last, m.index));
          next.push(m[0]);
          last = m.index + m[0].length;
        }
        if (last < piece.length) next.push(piece.slice(last));
      }
      pieces = next;
    }
    return pieces;
  };
}
