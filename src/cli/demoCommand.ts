// `specdec demo`: the two cases speculative decoding is for, on the default model family —
// reusing text the prompt holds, and free generation — every method against plain decoding
// measured in the same run, with a check that each one wrote exactly plain decoding's tokens.
import { Command, Option } from "commander";
import { markdownTable, measureMethod } from "../compare.js";
import { DEFAULT_MAX_TOKENS, generate } from "../decode/speculativeDecode.js";
import { DEFAULT_MODEL_FILES, defaultModels, MODELS_ENV, requireDefaultModel } from "../defaultModels.js";
import { DEFAULT_MEDUSA_CHOICES } from "../drafters/medusa.js";
import type { MethodOptionValues } from "../drafters/method.js";
import { NoDrafter } from "../drafters/none.js";
import { SpecdecError } from "../errors.js";
import { methodNamed } from "../methods.js";
import { methodNeeds, openDrafter, openTarget, type OpenedTarget } from "../session.js";
import { BACKENDS, type Backend } from "../targets/loadTarget.js";
import type { Target } from "../targets/target.js";
import type { Token } from "../types.js";
import { integer } from "./options.js";
import { formatTreeChoices } from "./treeChoices.js";

export interface DemoCliOptions {
  /** Backend of the target and the draft model. Default builtin. */
  backend: Backend;
  /** Tokens generated per prompt. Default 128. */
  maxTokens: number;
  /** Timed runs per prompt; the median time is kept. Default 3. */
  repeats: number;
  /** CPU threads for llama.cpp. Default 1. */
  threads: number;
  /** Print one JSON object instead of tables. */
  json?: boolean;
}

export const DEMO_DEFAULTS = { backend: "builtin", maxTokens: DEFAULT_MAX_TOKENS, repeats: 3, threads: 1 } as const;

/** Draft length of the draft model: k = 4, where its distilled draft was measured (README). */
const DEMO_DRAFT_K = 4;

/** Two short stories in the style of TinyStories, written for this demo. */
export const DEMO_STORIES = [
  "Once upon a time, there was a little dog named Max. Max liked to run in the park. One day, Max found a red ball under a tree. " +
    "He ran to his friend Sam with the ball. Sam threw it far, and Max ran fast to get it. They played all day, and Max was very happy.",
  "One day, a little girl named Mia went to the beach with her mom. Mia made a big sand castle with a blue bucket. " +
    'Then a wave came and took the castle away. Mia was sad, but her mom said, "We can make a new one." They made a bigger castle, and Mia smiled.',
];

/** The free-generation prompt. */
export const DEMO_FREE_PROMPT = "Once upon a time";

const firstSentence = (s: string) => (s.match(/^.*?[.!?](\s|$)/)?.[0] ?? s).trim();

/** A story, a blank line, and its first sentence again: a small story model then retells it. */
export function retellPrompt(story: string): string {
  return `${story}\n\n${firstSentence(story)}`;
}

export function addDemoCommand(cli: Command): void {
  const d = DEMO_DEFAULTS;
  cli
    .command("demo")
    .description(`every method against plain decoding on the default model family (models/, or $${MODELS_ENV}): reusing the prompt's text, and free generation`)
    .addOption(new Option("--backend <name>", "inference backend: builtin (specdec's own engine) or llama.cpp").choices(BACKENDS).default(d.backend))
    .option("--max-tokens <n>", "tokens generated per prompt", integer(1, 1_000_000), d.maxTokens)
    .option("--repeats <n>", "timed runs per prompt (the median time is kept)", integer(1, 1000), d.repeats)
    .option("--threads <n>", "CPU threads for llama.cpp", integer(1, 1024), d.threads)
    .option("--json", "print one JSON object with every measurement instead of tables")
    .action(runDemo);
}

interface DemoMethod {
  method: string;
  label: string;
  options: MethodOptionValues;
  draftMax: number;
}

interface Demo {
  name: "reuse" | "free";
  title: string;
  about: string;
  prompts: string[];
  methods: DemoMethod[];
}

export interface DemoRow {
  method: string;
  label: string;
  /** Tokens per target pass (plain decoding = 1). */
  tau: number;
  tokensPerSecond: number;
  /** tokensPerSecond over plain decoding's, measured in the same run. */
  speedup: number;
  /** Whether every prompt's tokens equal plain decoding's. */
  sameAsPlain: boolean;
}

export interface DemoResult {
  name: Demo["name"];
  title: string;
  prompts: string[];
  /** Plain decoding's text for the first prompt. */
  plainText: string;
  rows: DemoRow[];
  /** Methods the backend cannot run. */
  skipped: { label: string; reason: string }[];
}

type DemoMethodName = "none" | "prompt-lookup" | "draft" | "medusa";

/** The methods as `generate` runs them by default, except the draft length of the draft model (DEMO_DRAFT_K). */
function demoMethods(names: readonly DemoMethodName[]): DemoMethod[] {
  const lookupK = methodNamed("prompt-lookup").defaultDraftMax;
  const all: Record<DemoMethodName, DemoMethod> = {
    none: { method: "none", label: "none", options: {}, draftMax: 0 },
    "prompt-lookup": { method: "prompt-lookup", label: `prompt-lookup (k=${lookupK})`, options: {}, draftMax: lookupK },
    draft: { method: "draft", label: `draft (k=${DEMO_DRAFT_K})`, options: {}, draftMax: DEMO_DRAFT_K },
    medusa: { method: "medusa", label: `medusa (tree ${formatTreeChoices(DEFAULT_MEDUSA_CHOICES)})`, options: {}, draftMax: methodNamed("medusa").defaultDraftMax },
  };
  return names.map((n) => all[n]);
}

export async function runDemo(o: DemoCliOptions): Promise<void> {
  const models = defaultModels();
  const hint = `set ${MODELS_ENV} to a folder holding ${Object.values(DEFAULT_MODEL_FILES).join(", ")}`;
  requireDefaultModel(models.target, hint);
  requireDefaultModel(models.draft, hint);
  requireDefaultModel(models.medusa, hint);

  const reusePrompts = DEMO_STORIES.map(retellPrompt);
  const { opened, maxTokens } = await loadCapped(o, [...reusePrompts, DEMO_FREE_PROMPT]);
  const target = opened.target;
  const run: DemoCliOptions = { ...o, maxTokens };
  try {
    const demos: Demo[] = [
      {
        name: "reuse",
        title: "Summarization-style: the prompt holds the text to reuse",
        about: `${DEMO_STORIES.length} short stories, each followed by a blank line and its first sentence again, so the model retells it: prompt lookup copies the guesses from the prompt.`,
        prompts: reusePrompts,
        methods: demoMethods(["none", "prompt-lookup"]),
      },
      {
        name: "free",
        title: "Free text generation",
        about: `The prompt "${DEMO_FREE_PROMPT}": little to copy; the distilled draft model and the Medusa heads guess the model's own continuation (prompt lookup for reference).`,
        prompts: [DEMO_FREE_PROMPT],
        methods: demoMethods(["none", "draft", "medusa", "prompt-lookup"]),
      },
    ];

    // Untimed warm-up, so plain decoding, measured first, does not pay for compiling the kernels.
    await generate(target, new NoDrafter(), { prompt: DEMO_FREE_PROMPT, maxTokens: Math.min(16, maxTokens) });

    if (!o.json) {
      const engine = o.backend === "builtin" ? "built-in engine" : `llama.cpp (${o.threads} thread${o.threads > 1 ? "s" : ""})`;
      console.log(`specdec demo: default model family in ${models.dir}`);
      console.log(`${engine}, greedy (temperature 0), ${maxTokens} tokens per prompt, median of ${o.repeats} run${o.repeats > 1 ? "s" : ""}`);
      if (maxTokens < o.maxTokens) console.log(`(${maxTokens} tokens per prompt, not ${o.maxTokens}: prompt and output must fit the model's context of ${target.contextSize})`);
      console.log(`tau = tokens per target pass (plain decoding: 1); speedup = tokens/s over plain decoding's, in this run`);
    }
    const results: DemoResult[] = [];
    for (const [i, demo] of demos.entries()) {
      if (!o.json) console.log(`\n## ${i + 1}. ${demo.title}\n${demo.about}`);
      const result = await runOne(demo, opened, run);
      results.push(result);
      if (!o.json) printResult(result);
    }
    if (o.json) console.log(JSON.stringify({ backend: o.backend, modelsDir: models.dir, maxTokens, repeats: o.repeats, contextSize: target.contextSize, demos: results }));

    const bad = results.flatMap((r) => r.rows.filter((row) => !row.sameAsPlain).map((row) => `${row.label} (${r.name})`));
    if (bad.length > 0) throw new SpecdecError(`output differs from plain decoding: ${bad.join(", ")}`);
    if (!o.json) console.log("\nEvery method wrote exactly the tokens of plain decoding.");
  } finally {
    await target.dispose();
  }
}

/**
 * Load the target at its own context (`train model` records the training window there: past
 * it a small model's text degrades) and cap the tokens generated so that the longest prompt and
 * its output fit; `maxTokens` is the cap (≤ the asked-for count).
 */
async function loadCapped(o: DemoCliOptions, prompts: readonly string[]): Promise<{ opened: OpenedTarget; maxTokens: number }> {
  const opened = await openTarget({ backend: o.backend, threads: o.threads });
  const target = opened.target;
  const longest = Math.max(...prompts.map((p) => target.tokenize(p).length));
  const room = target.contextSize - longest;
  if (room < 8) {
    await target.dispose();
    throw new SpecdecError(`the demo's prompts (${longest} tokens) do not fit the model's context of ${target.contextSize}`);
  }
  return { opened, maxTokens: Math.min(o.maxTokens, room) };
}

/** Measure a demo's methods, plain decoding first: its tokens are the reference, its speed the baseline. */
async function runOne(demo: Demo, opened: OpenedTarget, o: DemoCliOptions): Promise<DemoResult> {
  const target: Target = opened.target;
  const progress = (s: string) => { if (!o.json && process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}`); };
  const rows: DemoRow[] = [];
  const skipped: DemoResult["skipped"] = [];
  let reference: Token[][] | undefined;
  let plainText = "";
  let baseline = 0;
  for (const m of demo.methods) {
    const missing = methodNeeds(m.method, m.options).filter((c) => !target.capabilities[c]);
    if (missing.length > 0) {
      skipped.push({ label: m.label, reason: `the ${target.backend} backend lacks ${missing.join(" and ")}` });
      continue;
    }
    progress(`measuring ${m.label}…`);
    const drafter = await openDrafter(opened, m.method, m.options);
    try {
      const r = await measureMethod(target, drafter, demo.prompts, { maxTokens: o.maxTokens, repeats: o.repeats, run: { draftMax: m.draftMax, sampling: { temperature: 0 } }, reference });
      if (!reference) {
        reference = r.results.map((x) => x.tokens);
        plainText = r.results[0].text;
        baseline = r.tokensPerSecond;
      }
      rows.push({ method: m.method, label: m.label, tau: r.tau, tokensPerSecond: r.tokensPerSecond, speedup: baseline > 0 ? r.tokensPerSecond / baseline : 0, sameAsPlain: r.sameAsReference ?? true });
    } finally {
      await drafter.dispose?.();
    }
  }
  progress("");
  return { name: demo.name, title: demo.title, prompts: demo.prompts, plainText, rows, skipped };
}

function printResult(r: DemoResult): void {
  console.log(`\nplain decoding's continuation${r.prompts.length > 1 ? " of the first prompt" : ""}:`);
  for (const line of excerpt(r.plainText)) console.log(`  > ${line}`);
  console.log();
  const header = ["method", "tau", "tok/s", "speedup vs none", "same tokens as none"];
  console.log(markdownTable(header, r.rows.map((x) => [x.label, x.tau.toFixed(2), x.tokensPerSecond.toFixed(0), `${x.speedup.toFixed(2)}x`, x.sameAsPlain ? "yes" : "NO"])));
  for (const s of r.skipped) console.log(`(${s.label}: skipped, ${s.reason})`);
}

/** The text on at most `lines` lines of `width` characters, whitespace collapsed, "…" when cut. */
function excerpt(text: string, width = 88, lines = 4): string[] {
  const out: string[] = [];
  let line = "";
  // Words longer than a line (a tiny model's "eeee…") are cut into line-sized pieces.
  const words = text.trim().split(/\s+/).flatMap((w) => w.match(new RegExp(`.{1,${width}}`, "gu")) ?? []);
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = "";
      if (out.length === lines) {
        out[lines - 1] += " …"; // `w` and what follows do not fit
        return out;
      }
    }
    line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out.length > 0 ? out : ["(nothing: the model ended at once)"];
}
