// `specdec demo`: the two cases speculative decoding is for, on the default model family —
// reusing text the prompt holds, and free generation — every method against plain decoding
// measured in the same run, with a check that each one wrote exactly plain decoding's tokens;
// then the same on the family target's 100M heavy twin (made on first use), where a pass is
// memory-bound and guesses can pay. Budgets come from the cost model.
import { Command, Option } from "commander";
import { markdownTable, measureMethod } from "../compare.js";
import { DEFAULT_MAX_TOKENS, generate, speculativeStream } from "../decode/speculativeDecode.js";
import { DEFAULT_MODEL_FILES, defaultModels, MODELS_ENV, requireDefaultModel, type DefaultModels } from "../defaultModels.js";
import type { Drafter } from "../drafters/drafter.js";
import { cachedTwin, parseParamCount } from "../inflate.js";
import { cacheDir } from "../planner/passCost.js";
import type { Planner } from "../planner/planner.js";
import { colour } from "./generateCommand.js";
import type { MethodOptionValues } from "../drafters/method.js";
import { NoDrafter } from "../drafters/none.js";
import { SpecdecError } from "../errors.js";
import { methodNeeds, openDrafter, openPlanner, openTarget, type OpenedTarget } from "../session.js";
import { addTargetOptions, targetSpecFrom, type TargetCliOptions } from "./targetOptions.js";
import type { Target } from "../targets/target.js";
import type { Token } from "../types.js";
import { integer } from "./options.js";

export interface DemoCliOptions extends TargetCliOptions {
  /** Tokens generated per prompt. Default 128. */
  maxTokens: number;
  /** Timed runs per prompt; the median time is kept. Default 3. */
  repeats: number;
  /** Print one JSON object instead of tables. */
  json?: boolean;
  /** Also run on the heavy twin (default true; --no-twin skips it). */
  twin: boolean;
  /** The twin's parameter count (hidden; tests use a small one). Default 100M. */
  twinParams: string;
  /** Colour one continuation per demonstration by how it came (on a terminal). */
  showGuesses?: boolean;
}

export const DEMO_DEFAULTS = { maxTokens: DEFAULT_MAX_TOKENS, repeats: 3, twinParams: "100M" } as const;

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
  const cmd = cli
    .command("demo")
    .description(`every method against plain decoding on the default model family (models/, or $${MODELS_ENV}) and on its 100M heavy twin: reusing the prompt's text, and free generation`)
    .option("--max-tokens <n>", "tokens generated per prompt", integer(1, 1_000_000), d.maxTokens)
    .option("--repeats <n>", "timed runs per prompt (the median time is kept)", integer(1, 1000), d.repeats)
    .option("--json", "print one JSON object with every measurement instead of tables")
    .option("--no-twin", "skip the run on the target's 100M heavy twin")
    .addOption(new Option("--twin-params <count>").default(d.twinParams).hideHelp())
    .option("--show-guesses", "colour a continuation per demonstration by how each token came: accepted guess (green) or the target's own (on a terminal)");
  addTargetOptions(cmd, { model: "none" }).action(runDemo);
}

interface DemoMethod {
  method: string;
  label: string;
  options: MethodOptionValues;
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
  /** Where not: whether every difference starts at a near-tie (llama.cpp's batched and one-token passes may round one apart). */
  onlyNearTies?: boolean;
  /** Mean guesses per step the cost model allowed. */
  meanBudget: number;
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
  /** With --show-guesses on a terminal: each method's continuation of the first prompt, coloured. */
  shown: { label: string; text: string }[];
}

type DemoMethodName = "none" | "prompt-lookup" | "suffix" | "draft" | "medusa" | "eagle";

/** The methods as `generate` runs them by default: the family's helpers, budgets from the cost model. */
function demoMethods(names: readonly DemoMethodName[]): DemoMethod[] {
  const all: Record<DemoMethodName, DemoMethod> = {
    none: { method: "none", label: "none", options: {} },
    "prompt-lookup": { method: "prompt-lookup", label: "prompt-lookup", options: {} },
    suffix: { method: "suffix", label: "suffix (this request only)", options: { suffixCacheTokens: 0 } },
    draft: { method: "draft", label: "draft (distilled draft model)", options: {} },
    medusa: { method: "medusa", label: "medusa (trained heads)", options: {} },
    eagle: { method: "eagle", label: "eagle (trained head)", options: {} },
  };
  return names.map((n) => all[n]);
}

export async function runDemo(o: DemoCliOptions): Promise<void> {
  const models = defaultModels();
  const hint = `set ${MODELS_ENV} to a folder holding ${Object.values(DEFAULT_MODEL_FILES).join(", ")}`;
  requireDefaultModel(models.target, hint);
  requireDefaultModel(models.draft, hint);
  requireDefaultModel(models.medusa, hint);
  requireDefaultModel(models.eagle, hint);
  const runs: { label: string; path: string }[] = [{ label: "the default target", path: models.target }];
  if (o.twin) {
    const params = parseParamCount(o.twinParams);
    const tty = process.stderr.isTTY && !o.json;
    const twin = cachedTwin(models.target, cacheDir(), { params, onProgress: (done, total) => tty && process.stderr.write(`\r\x1b[Kmaking the target's ${o.twinParams} heavy twin (once, cached): tensor ${done}/${total}${done === total ? "\n" : ""}`) });
    runs.push({ label: `its ${o.twinParams} heavy twin (the same function, the weight traffic of a ${o.twinParams}-parameter model)`, path: twin });
  }
  const reusePrompts = DEMO_STORIES.map(retellPrompt);
  const demos: Demo[] = [
    {
      name: "reuse",
      title: "Summarization-style: the prompt holds the text to reuse",
      about: `${DEMO_STORIES.length} short stories, each followed by a blank line and its first sentence again, so the model retells it: prompt lookup copies the guesses from the prompt.`,
      prompts: reusePrompts,
      methods: demoMethods(["none", "prompt-lookup", "suffix"]),
    },
    {
      name: "free",
      title: "Free text generation",
      about: `The prompt "${DEMO_FREE_PROMPT}": little to copy; the distilled draft model, the Medusa heads and the EAGLE head guess the model's own continuation (prompt lookup for reference).`,
      prompts: [DEMO_FREE_PROMPT],
      methods: demoMethods(["none", "draft", "medusa", "eagle", "prompt-lookup"]),
    },
  ];
  const engine = (o.backend ?? "llama.cpp") === "builtin" ? "built-in engine" : `llama.cpp (threads ${o.threads})`;
  if (!o.json) {
    console.log(`specdec demo: default model family in ${models.dir}`);
    console.log(`${engine}, greedy (temperature 0), median of ${o.repeats} run${o.repeats > 1 ? "s" : ""}; each method's budget per step from the cost model (this target's measured pass costs and the running acceptance)`);
    console.log(`tau = tokens per target pass (plain decoding: 1); speedup = tokens/s over plain decoding's, in this run`);
  }
  const out: { label: string; path: string; backend: string; maxTokens: number; contextSize: number; demos: DemoResult[] }[] = [];
  for (const r of runs) {
    const { opened, maxTokens } = await loadCapped(o, r.path, models, [...reusePrompts, DEMO_FREE_PROMPT]);
    const target = opened.target;
    try {
      if (!o.json) {
        console.log(`\n# On ${r.label}\n${r.path}`);
        if (maxTokens < o.maxTokens) console.log(`(${maxTokens} tokens per prompt, not ${o.maxTokens}: prompt and output must fit the model's context of ${target.contextSize})`);
      }
      // Untimed warm-up, so plain decoding, measured first, does not pay for compiling the kernels.
      await generate(target, new NoDrafter(), { prompt: DEMO_FREE_PROMPT, maxTokens: Math.min(16, maxTokens) });
      const results: DemoResult[] = [];
      for (const [i, demo] of demos.entries()) {
        if (!o.json) console.log(`\n## ${i + 1}. ${demo.title}\n${demo.about}`);
        const result = await runOne(demo, opened, { ...o, maxTokens });
        results.push(result);
        if (!o.json) printResult(result);
      }
      out.push({ label: r.label, path: r.path, backend: target.backend, maxTokens, contextSize: target.contextSize, demos: results });
    } finally {
      await target.dispose();
    }
  }
  if (o.json) {
    const [first, twin] = out;
    console.log(JSON.stringify({ backend: first.backend, modelsDir: models.dir, maxTokens: first.maxTokens, repeats: o.repeats, contextSize: first.contextSize, demos: first.demos, ...(twin ? { twin: { path: twin.path, params: o.twinParams, maxTokens: twin.maxTokens, demos: twin.demos } } : {}) }));
  }
  const bad = out.flatMap((m) => m.demos.flatMap((r) => r.rows.filter((row) => !row.sameAsPlain && !row.onlyNearTies).map((row) => `${row.label} (${r.name}, ${m.label})`)));
  if (bad.length > 0) throw new SpecdecError(`output differs from plain decoding: ${bad.join(", ")}`);
  const ties = out.some((m) => m.demos.some((r) => r.rows.some((row) => !row.sameAsPlain)));
  if (!o.json) console.log(ties ? "\nEvery method wrote the tokens of plain decoding, except after a near-tie of the target's two best tokens (llama.cpp's batched and one-token passes round those apart)." : "\nEvery method wrote exactly the tokens of plain decoding.");
}

/**
 * Load the target at its own context (`train model` records the training window there: past
 * it a small model's text degrades) and cap the tokens generated so that the longest prompt and
 * its output fit; `maxTokens` is the cap (≤ the asked-for count).
 */
async function loadCapped(o: DemoCliOptions, path: string, family: DefaultModels, prompts: readonly string[]): Promise<{ opened: OpenedTarget; maxTokens: number }> {
  const opened = await openTarget({ ...targetSpecFrom(o), model: path, family });
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
  const shown: { label: string; text: string }[] = [];
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
      const planner = await openPlanner(opened, m.method, { onMeasure: (done, total) => progress(`measuring this model's pass costs (first use, cached): ${done}/${total}`) });
      const r = await measureMethod(target, drafter, demo.prompts, { maxTokens: o.maxTokens, repeats: o.repeats, run: { planner, sampling: { temperature: 0 } }, reference });
      if (!reference) {
        reference = r.results.map((x) => x.tokens);
        plainText = r.results[0].text;
        baseline = r.tokensPerSecond;
      }
      const calls = r.results.reduce((a, x) => a + x.stats.targetCalls, 0);
      const budget = r.results.reduce((a, x) => a + x.stats.meanBudget * x.stats.targetCalls, 0);
      rows.push({ method: m.method, label: m.label, tau: r.tau, tokensPerSecond: r.tokensPerSecond, speedup: baseline > 0 ? r.tokensPerSecond / baseline : 0, sameAsPlain: r.sameAsReference ?? true, ...(r.differing ? { onlyNearTies: r.nearTies === r.differing } : {}), meanBudget: calls > 0 ? budget / calls : 0 });
      if (o.showGuesses && process.stdout.isTTY && m.method !== "none" && !o.json) shown.push({ label: m.label, text: await colouredContinuation(target, drafter, demo.prompts[0], o.maxTokens, planner) });
    } finally {
      await drafter.dispose?.();
    }
  }
  progress("");
  return { name: demo.name, title: demo.title, prompts: demo.prompts, plainText, rows, skipped, shown };
}

/** One continuation with its accepted guesses coloured (as `generate --show-guesses` prints it). */
async function colouredContinuation(target: Target, drafter: Drafter, prompt: string, maxTokens: number, planner: Planner): Promise<string> {
  let text = "";
  for await (const step of speculativeStream(target, drafter, { prompt, maxTokens, planner, textOrigins: true })) text += colour(step.segments ?? []);
  return text;
}

function printResult(r: DemoResult): void {
  console.log(`\nplain decoding's continuation${r.prompts.length > 1 ? " of the first prompt" : ""}:`);
  for (const line of excerpt(r.plainText)) console.log(`  > ${line}`);
  console.log();
  const header = ["method", "tau", "tok/s", "speedup vs none", "mean budget", "same tokens as none"];
  console.log(markdownTable(header, r.rows.map((x) => [x.label, x.tau.toFixed(2), x.tokensPerSecond.toFixed(0), `${x.speedup.toFixed(2)}x`, x.meanBudget.toFixed(2), x.sameAsPlain ? "yes" : x.onlyNearTies ? "near-tie" : "NO"])));
  for (const s of r.skipped) console.log(`(${s.label}: skipped, ${s.reason})`);
  for (const s of r.shown) console.log(`\n${s.label}, accepted guesses in green:\n${s.text}`);
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
