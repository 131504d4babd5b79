// Target "tokenizer": load the tokenizer of a mutated file and run random and hostile text
// through it; or, on an unmutated vocabulary, check the promises the tokenizers make:
//  - detokenize(tokenize(text)) gives the text back (SentencePiece and byte-level BPE, with the
//    clean-up of spaces off; WordPiece lowercases and strips accents, so it promises nothing);
//  - streaming detokenization (TokenTextDecoder) gives exactly what detokenize gives;
//  - token ids are always inside the vocabulary; ids outside it are refused with a SpecdecError.
// The texts are drawn at run time (they mix in the loaded vocabulary's own token texts) from a
// generator of their own, so they too follow from the case id.

import type { CaseVerdict } from "../outcome.js";
import { CaseRng } from "../random.js";
import { BYTE_TO_CHAR, loadTokenizer, openGguf, TokenTextDecoder, type Tokenizer } from "../specdec.js";
import { randomIds, randomText } from "../texts.js";
import { mutantCase } from "./mutantCase.js";
import type { FuzzTarget } from "./target.js";

interface TokenizerParams {
  pristine: boolean;
  seedPath: string;
  campaignSeed: number;
  index: number;
}

const pristineCache = new Map<string, Tokenizer>();
const coverageCache = new Map<Tokenizer, boolean[]>();

/**
 * Which bytes have a token of their own (byte-level BPE: GPT-2's character for the byte;
 * SentencePiece: <0xNN>). A byte without one is dropped by llama.cpp's fallback, and by ours,
 * so only texts made of covered bytes promise to come back whole (falcon lacks 0x0B, say).
 */
function byteCoverage(tk: Tokenizer): boolean[] {
  let c = coverageCache.get(tk);
  if (!c) {
    const texts = new Set<string>();
    for (let i = 0; i < tk.vocabSize; i++) texts.add(tk.tokenText(i));
    const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, "0");
    c = Array.from({ length: 256 }, (_, b) => texts.has(tk.model === "gpt2" ? BYTE_TO_CHAR[b] : `<0x${hex(b)}>`));
    coverageCache.set(tk, c);
  }
  return c;
}

function loadFrom(path: string): Tokenizer {
  const f = openGguf(path);
  try {
    return loadTokenizer(f);
  } finally {
    f.close();
  }
}

/** Some token texts of the vocabulary (special ones included), raw or decoded, to mix into texts. */
function vocabPieces(tk: Tokenizer, rng: CaseRng): string[] {
  const out: string[] = [];
  for (let i = 0; i < 12; i++) {
    const id = rng.chance(0.3) ? rng.int(Math.min(tk.vocabSize, 300)) : rng.int(tk.vocabSize);
    out.push(rng.chance(0.5) ? tk.tokenText(id) : Buffer.from(tk.tokenPieceBytes(id)).toString("utf8"));
  }
  return out;
}

const show = (s: string) => JSON.stringify(s.length > 80 ? s.slice(0, 80) + "…" : s);

export const tokenizerTarget: FuzzTarget = {
  name: "tokenizer",
  timeLimitMs: 20_000,
  build(seed, index) {
    // Every other case keeps the vocabulary as it is (loaded once per worker), to check the promises.
    const pristine = index % 2 === 0;
    const { seed: s, base } = mutantCase("tokenizer", seed, index, "tokenizers", { keys: /^tokenizer\./ }, pristine);
    const params: TokenizerParams = { pristine, seedPath: s.path, campaignSeed: seed, index };
    return { ...base, file: pristine ? undefined : base.file, params: { ...params } };
  },
  async run(c, file): Promise<CaseVerdict> {
    const p = c.params as unknown as TokenizerParams;
    let tk: Tokenizer;
    if (p.pristine) {
      tk = pristineCache.get(p.seedPath) ?? loadFrom(p.seedPath);
      pristineCache.set(p.seedPath, tk);
    } else tk = loadFrom(file!);
    const rng = new CaseRng(p.campaignSeed, "tokenizer/texts", p.index);
    const pieces = vocabPieces(tk, rng);
    // Tokenizers that promise detokenize(tokenize(text)) === text (for well-formed text).
    const roundTrips = p.pristine && (tk.model === "llama" || tk.model === "gpt2");
    const n = rng.range(1, 6);
    for (let i = 0; i < n; i++) {
      const text = randomText(rng, pieces);
      const addSpecial = rng.chance(0.3);
      const parseSpecial = rng.chance(0.3);
      const removeSpecial = rng.chance(0.5);
      const unparseSpecial = rng.chance(0.3);
      const ids = tk.tokenize(text, { addSpecial, parseSpecial });
      const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= tk.vocabSize);
      if (bad !== undefined) return { outcome: "wrong", detail: `tokenize(${show(text)}) gave id ${bad} outside the vocabulary of ${tk.vocabSize}` };
      const back = tk.detokenize(ids, { removeSpecial, unparseSpecial, cleanSpaces: false });
      const d = new TokenTextDecoder(tk, { removeSpecial, unparseSpecial });
      let stream = "";
      for (const t of ids) stream += d.push(t);
      stream += d.flush();
      if (stream !== back) return { outcome: "wrong", detail: `streaming detokenization of ${show(text)} gave ${show(stream)}, detokenize gave ${show(back)}` };
      // SentencePiece writes spaces as U+2581, so a U+2581 of the text comes back as a space (as in llama.cpp).
      const bytes = Buffer.from(text, "utf8"); // lone surrogates become U+FFFD
      const covered = roundTrips && bytes.every((b) => byteCoverage(tk)[b]);
      if (covered && !addSpecial && !parseSpecial && !unparseSpecial && !(tk.model === "llama" && text.includes("\u2581"))) {
        const want = bytes.toString("utf8");
        const plain = tk.detokenize(ids, { cleanSpaces: false });
        if (plain !== want) return { outcome: "wrong", detail: `${c.seedName}: detokenize(tokenize(${show(text)})) gave ${show(plain)}` };
      }
    }
    // Ids from anywhere, some outside the vocabulary: text, or a clean refusal.
    const ids = randomIds(rng, tk.vocabSize);
    tk.detokenize(ids);
    return { outcome: "parsed", detail: `${tk.model} tokenizer, ${n} texts` };
  },
};
