// npm run bench:family [-- --models DIR --prompts N --max-tokens N --repeats N]
// Every method on the default model family (models/: target, distilled draft, Medusa heads),
// built-in engine, greedy, against plain decoding in the same process. The prompts come from
// the END of the TinyStories validation head: the paragraphs the family's recipes hold out
// (their last 5%), so neither the target nor its helpers trained on them. The model cards'
// tau tables come from this script.

import { Command } from "commander";
import { join } from "node:path";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { markdownTable, measureMethod } from "../src/compare.js";
import { DEFAULT_MODEL_FILES, defaultModels } from "../src/defaultModels.js";
import { chainChoices } from "../src/drafters/draftTree.js";
import type { MethodOptionValues } from "../src/drafters/method.js";
import { drafterFor } from "../test/support/methods.js";
import { firstSentence, heldOutParagraphs } from "./prompts.js";
import type { GenerateOptions } from "../src/decode/speculativeDecode.js";
import type { Token } from "../src/types.js";

const opts = new Command("bench-family")
  .option("--models <dir>", "folder holding the family's three files (default: models/)")
  .option("--prompts <n>", "prompts per group", (v) => parseInt(v, 10), 8)
  .option("--max-tokens <n>", "tokens per generation", (v) => parseInt(v, 10), 96)
  .option("--repeats <n>", "timed repeats (median kept)", (v) => parseInt(v, 10), 3)
  .parse()
  .opts<{ models?: string; prompts: number; maxTokens: number; repeats: number }>();

const family = opts.models
  ? { target: join(opts.models, DEFAULT_MODEL_FILES.target), draft: join(opts.models, DEFAULT_MODEL_FILES.draft), medusa: join(opts.models, DEFAULT_MODEL_FILES.medusa) }
  : defaultModels();
const target = await BuiltinTarget.load(family.target);

// Held-out paragraphs: the last ones of the validation head, 200-500 characters (room in the context).
const tail = heldOutParagraphs(opts.prompts);
const groups = {
  "repeat (a held-out paragraph, a blank line, its first sentence again)": tail.map((s) => `${s}\n\n${firstSentence(s)}`),
  "free (a held-out paragraph's first sentence)": tail.map(firstSentence),
};

interface Config { label: string; method: string; options: MethodOptionValues; run: Omit<GenerateOptions, "prompt" | "maxTokens"> }
const draft = (k: number): Config => ({ label: `draft k=${k}`, method: "draft", options: { draftModel: family.draft }, run: { draftMax: k } });
const configs: Config[] = [
  { label: "none", method: "none", options: {}, run: {} },
  { label: "blind k=2", method: "blind", options: {}, run: { draftMax: 2 } },
  { label: "prompt-lookup k=2", method: "prompt-lookup", options: {}, run: { draftMax: 2 } },
  { label: "prompt-lookup tree c=3 k=6", method: "prompt-lookup", options: { candidates: 3 }, run: { draftMax: 6 } },
  { label: "lookahead (default)", method: "lookahead", options: {}, run: {} },
  draft(1),
  draft(2),
  draft(4),
  { label: "medusa chain 1 `0`", method: "medusa", options: { medusa: family.medusa, tree: chainChoices(1) }, run: {} },
  { label: "medusa default tree `0;0,0`", method: "medusa", options: { medusa: family.medusa }, run: {} },
  { label: "medusa chain 4", method: "medusa", options: { medusa: family.medusa, tree: chainChoices(4) }, run: {} },
];

console.log(`built-in engine, ${family.target}; ${opts.prompts} held-out prompts per group, ${opts.maxTokens} tokens each, median of ${opts.repeats}; greedy; node ${process.version}`);
for (const [group, prompts] of Object.entries(groups)) {
  console.log(`\n### ${group}\n`);
  let reference: Token[][] | undefined;
  let baseline = 0;
  const rows: string[][] = [];
  for (const c of configs) {
    const drafter = await drafterFor(target, c.method, c.options);
    const m = await measureMethod(target, drafter, prompts, { maxTokens: opts.maxTokens, repeats: opts.repeats, run: c.run, reference });
    await drafter.dispose?.();
    if (!reference) {
      reference = m.results.map((r) => r.tokens);
      baseline = m.tokensPerSecond;
    }
    const byPos = m.acceptanceByPosition.slice(0, 6).map((x) => x.toFixed(2)).join(" ") || "-";
    rows.push([c.label, m.tau.toFixed(2), byPos, m.tokensPerSecond.toFixed(0), `${(m.tokensPerSecond / baseline).toFixed(2)}x`, `${(100 * m.draftShare).toFixed(0)}%`, m.sameAsReference === false ? "NO" : "yes"]);
  }
  console.log(markdownTable(["method", "tau", "accept by position", "tok/s", "speedup vs none", "drafting time", "same tokens as none"], rows));
}
process.exit(0);
