// The text the trainers learn from, the same way for all three: a corpus file read and checked
// (readCorpus: not empty, not binary, UTF-8, not only whitespace), cut into paragraphs (one per
// line, trimmed, blank lines dropped: `paragraphs`, the one split every trainer uses), and the
// held-out part when no validation text is given: the end of the corpus's paragraphs (holdOut).
//
// How many paragraphs are held out differs between the trainers and is kept as it was, so that
// their data (and the committed models' recipes) stay the same: a HoldoutRule says it.

import { SpecdecError } from "../errors.js";
import { readBoundedFile } from "../inputFile.js";
import { TrainOptionError } from "./optionError.js";
import { sha256 } from "./sha256.js";

/** A text to learn from; `hash` (of the file's bytes) ties checkpoints to it. */
export interface TrainText {
  text: string;
  hash?: string;
}

/** Largest corpus read (a bound, so /dev/zero is an error rather than the end of the memory). */
export const MAX_CORPUS_BYTES = 2 ** 30;

/** Read a corpus: non-empty UTF-8 text, not binary. `what` names it in errors. */
export function readCorpus(path: string, what = "corpus"): Required<TrainText> {
  const buf = readBoundedFile(path, MAX_CORPUS_BYTES, what);
  if (buf.length === 0) throw new SpecdecError(`${what} ${path} is empty`);
  let control = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c === 0) throw new SpecdecError(`${what} ${path} looks binary (NUL bytes): expected UTF-8 text`);
    if (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) control++;
  }
  if (control > buf.length / 100) throw new SpecdecError(`${what} ${path} looks binary (${control} control bytes): expected UTF-8 text`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new SpecdecError(`${what} ${path} is not valid UTF-8 text`);
  }
  if (text.trim().length === 0) throw new SpecdecError(`${what} ${path} has no text (only whitespace)`);
  return { text, hash: sha256(buf) };
}

/**
 * Paragraphs: the lines of `text` ("\n"-separated; a "\r" before it is trimmed with the other
 * whitespace), trimmed, blank ones dropped.
 */
export function paragraphs(text: string): string[] {
  return text
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** How a trainer holds out the end of its corpus's paragraphs when it has no validation text. */
export interface HoldoutRule {
  /** Fraction of the paragraphs held out (the last ones). */
  fraction: number;
  /**
   * Rounding: "train-floor" keeps floor(n · (1 − fraction)) paragraphs, at least 1, for
   * training; "held-out-nearest" holds out round(n · fraction), at least 1.
   */
  rounding: "train-floor" | "held-out-nearest";
  /** The fewest paragraphs to hold some out of; with fewer, nothing is held out ("none") or it is an error ("error"). */
  minParagraphs: number;
  tooFew: "none" | "error";
}

/** `train draft`: the last 5% (at least 1 paragraph kept for training); 2 paragraphs or more. */
export const DRAFT_HOLDOUT: HoldoutRule = { fraction: 0.05, rounding: "train-floor", minParagraphs: 2, tooFew: "error" };
/** `train model`: the last 5%, when there are 20 paragraphs or more (else no held-out text). */
export const MODEL_HOLDOUT: HoldoutRule = { fraction: 0.05, rounding: "train-floor", minParagraphs: 20, tooFew: "none" };
/** `train medusa`: the last `fraction` of the paragraphs (rounded, at least 1); 2 paragraphs or more. */
export const medusaHoldout = (fraction: number): HoldoutRule => ({ fraction, rounding: "held-out-nearest", minParagraphs: 2, tooFew: "error" });

/**
 * The paragraphs split into training and held-out ones by `rule`; undefined when there are too
 * few to hold some out and the rule says "none". `what` names the corpus in errors.
 */
export function holdOut(paras: readonly string[], rule: HoldoutRule, what = "the corpus"): { train: string[]; val: string[] } | undefined {
  const n = paras.length;
  if (n < rule.minParagraphs) {
    if (rule.tooFew === "none") return undefined;
    throw new TrainOptionError((o) => `${what} has ${n} paragraph${n === 1 ? "" : "s"}: too few to hold some out (give held-out text with ${o("val")})`);
  }
  const cut = rule.rounding === "train-floor" ? Math.max(1, Math.floor(n * (1 - rule.fraction))) : n - Math.max(1, Math.round(n * rule.fraction));
  return { train: paras.slice(0, cut), val: paras.slice(cut) };
}

/**
 * A trainer's training and held-out text (train draft, train model): `val` when given, with all
 * of `train`; else the paragraphs of `train` split by `rule`, each part as lines joined by "\n";
 * else (too few paragraphs, rule "none") all of `train` and no held-out text ("").
 */
export function trainingTexts(train: string, val: string | undefined, rule: HoldoutRule, what?: string): { train: string; val: string } {
  if (val !== undefined) return { train, val };
  const split = holdOut(paragraphs(train), rule, what);
  return split ? { train: split.train.join("\n"), val: split.val.join("\n") } : { train, val: "" };
}
