// Benchmark prompts built from the TinyStories validation head in the shared folder.
import { readFileSync } from "node:fs";
import { sharedFile } from "../test/support/sharedData.js";

export interface BenchPrompt {
  name: string;
  group: "repeat" | "free";
  text: string;
}

/** Stories from the validation head (never the training text), shortest-first up to maxChars. */
export function validationStories(count: number, maxChars = 700): string[] {
  const raw = readFileSync(sharedFile("corpora", "tinystories", "tinystories_val_head.txt"), "utf8");
  const stories = raw.split(/<\|endoftext\|>|\n\s*\n/).map((s) => s.trim()).filter((s) => s.length > 200 && s.length < maxChars);
  return stories.slice(0, count);
}

/**
 * "repeat": a story, a blank line, then its first sentence again — the model tends to retell
 * the story, which prompt lookup can copy (the summarization-style case).
 * "free": only a story's first sentence — free generation, nothing to copy from the prompt.
 */
export function benchPrompts(perGroup: number, maxChars?: number): BenchPrompt[] {
  const stories = validationStories(perGroup, maxChars);
  return [
    ...stories.map((s, i) => ({ name: `repeat-${i}`, group: "repeat" as const, text: `${s}\n\n${firstSentence(s)}` })),
    ...stories.map((s, i) => ({ name: `free-${i}`, group: "free" as const, text: firstSentence(s) })),
  ];
}

/**
 * The default family's held-out prompts: the last `count` paragraphs of 200–500 characters in
 * the last 3% of the TinyStories validation head (the paragraphs the family's recipes hold out,
 * their last 5%), and the first sentence of a paragraph.
 */
export function heldOutParagraphs(count: number): string[] {
  const paragraphs = readFileSync(sharedFile("corpora", "tinystories", "tinystories_val_head.txt"), "utf8").split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
  return paragraphs.slice(Math.floor(paragraphs.length * 0.97)).filter((s) => s.length >= 200 && s.length <= 500).slice(-count);
}

/** A paragraph's first sentence (the "continue" / "free" prompt). */
export const firstSentence = (s: string): string => (s.match(/^.*?[.!?](\s|$)/)?.[0] ?? s.slice(0, 60)).trim();
