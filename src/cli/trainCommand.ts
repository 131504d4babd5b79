// `specdec train medusa | draft | model`: self-distil Medusa heads for a target, distil a draft
// model from a target, or train a tokenizer and a small llama model from scratch, on a text
// corpus. All three checkpoint and resume (--checkpoint FILE, --checkpoint-every N, --resume;
// Ctrl-C saves a checkpoint and says how to resume; hidden --stop-after N for tests), wired once
// (checkpointOptions, checkOutput, runInterruptible), and show progress (progressBars: a bar on a
// TTY; plain lines otherwise for draft and model; nothing with --quiet). `train model --threads N`
// shares each step's batch among N threads (data-parallel worker threads: dataParallel.ts).
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { createHash } from "node:crypto";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import { readBoundedFile } from "./inputFile.js";
import { BuiltinTarget } from "../backends/builtin.js";
import { SpecdecError } from "../errors.js";
import { saveMedusaHeads } from "../medusa/medusaHeads.js";
import { MEDUSA_TRAIN_DEFAULTS, paragraphs, trainMedusa, type MedusaProjection, type MedusaTargets, type TrainProgress, type TrainText } from "../train/medusaTrainer.js";
import { saveDraftGguf, trainDraftAsync, type DraftData, type DraftTrainConfig } from "../train/draftTrainer.js";
import { integer, real } from "./options.js";
import type { CheckpointHooks } from "../train/checkpoint.js";
import { saveModelGguf, trainModelAsync, type ModelTrainConfig } from "../train/modelTrainer.js";
import { MAX_BPE_VOCAB } from "../train/bpeTrainer.js";

/** The checkpoint options every train command has (checkpointOptions) and --out, --force, --quiet. */
export interface CheckpointCliOptions {
  out: string;
  checkpoint?: string;
  checkpointEvery: number;
  resume?: boolean;
  stopAfter?: number;
  force?: boolean;
  quiet?: boolean;
}

export interface TrainMedusaCliOptions extends CheckpointCliOptions {
  model: string;
  data: string;
  heads: number;
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  holdout?: number;
  val?: string;
  targets: MedusaTargets;
  projection: MedusaProjection;
  examples: number;
  valExamples: number;
  continuation: number;
}

/** Add `train medusa`, `train draft` and `train model` to the program. */
export function addTrainCommand(cli: Command): void {
  const train = cli.command("train").description("train helpers for a target model");
  const d = MEDUSA_TRAIN_DEFAULTS;
  const medusa = train
    .command("medusa")
    .description("self-distil Medusa heads for a target (builtin engine) on a text corpus, one paragraph per line")
    .requiredOption("--model <file>", "target model (GGUF)")
    .requiredOption("--data <file>", "training corpus (UTF-8 text)")
    .requiredOption("--out <file>", "heads file to write (GGUF), for generate --method medusa --medusa FILE")
    .option("--heads <k>", "number of heads", integer(1, 64), d.heads)
    .option("--steps <n>", "optimizer steps", integer(1, 100_000_000), d.steps)
    .option("--batch <b>", "positions per step", integer(1, 65536), d.batch)
    .option("--lr <lr>", "peak learning rate (AdamW, warm-up then cosine)", real(0, 10, { minExclusive: true }), d.lr)
    .option("--seed <s>", "seed for initialisation, data and shuffling", integer(0, 2 ** 32 - 1), d.seed)
    .option("--holdout <fraction>", `fraction of the corpus's paragraphs (its end) held out for evaluation (default ${d.holdout})`, real(0, 1, { minExclusive: true }))
    .option("--val <file>", "held-out text for evaluation instead of --holdout")
    .addOption(new Option("--targets <kind>", "labels: greedy = the target's own greedy continuation (exact, on generated text); corpus = the corpus tokens; argmax = the target's next-token argmax at corpus positions (approximation)").choices(["greedy", "corpus", "argmax"]).default(d.targets))
    .addOption(new Option("--projection <kind>", "own = each head trains its own vocabulary projection (from the target's); shared = the target's output matrix, frozen (smaller file)").choices(["own", "shared"]).default(d.projection))
    .option("--examples <n>", "most training positions taken from the corpus", integer(1, 100_000_000), d.maxExamples)
    .option("--val-examples <n>", "most held-out positions evaluated", integer(1, 100_000_000), d.valExamples)
    .option("--continuation <n>", "greedy tokens generated after each prompt (--targets greedy)", integer(1, 1_000_000), d.continuation);
  checkpointOptions(medusa, 500)
    .option("--force", "overwrite --out if it exists")
    .option("--quiet", "no progress bar")
    .action(runTrainMedusa);

  // Defaults: the configuration measured in bench/trainDraft.ts (tau 2.32 at k = 4 on stories260K).
  const draft = train
    .command("draft")
    .description("distil a small llama-architecture draft model (the target's tokenizer) from a target, on a text corpus")
    .requiredOption("--model <file>", "target model (GGUF, llama architecture, built-in engine)")
    .requiredOption("--data <file>", "training text (UTF-8, one paragraph per line)")
    .requiredOption("--out <file>", "where to write the draft model (GGUF; loads in llama.cpp and the built-in engine)")
    .option("--val <file>", "held-out text (default: the last 5% of --data's paragraphs)");
  llamaTrainingOptions(draft, { dim: 48, hidden: 128, context: 144, steps: 600, batch: 4 })
    .option("--alpha <a>", "weight of KL to the target's distribution (the rest: cross-entropy on the text)", real(0, 1), 1)
    .addOption(new Option("--targets <kind>", "train on the target's greedy continuations of corpus prompts, or on the corpus itself").choices(["greedy", "corpus"]).default("greedy"))
    .option("--windows <n>", "most training windows prepared", integer(1, 10_000_000), 512)
    .option("--seed <s>", "seed for initialisation, data and shuffling", integer(0, 2 ** 32 - 1), 0)
    .option("--force", "overwrite --out if it exists")
    .option("--quiet", "no progress")
    .action(runTrainDraft);

  const model = train
    .command("model")
    .description("train a byte-level BPE tokenizer and a small llama model from scratch on a text corpus (one paragraph per line)")
    .requiredOption("--data <file>", "training text (UTF-8, one paragraph per line)")
    .requiredOption("--out <file>", "where to write the model (GGUF; loads in llama.cpp and the built-in engine)")
    .option("--val <file>", "held-out text (default: the last 5% of --data's paragraphs when it has 20 or more)")
    .option("--vocab <n>", "vocabulary size (256 bytes + merges + <|endoftext|>)", integer(257, MAX_BPE_VOCAB), 1024);
  llamaTrainingOptions(model, { dim: 64, hidden: 176, context: 128, steps: 500, batch: 8 })
    .option("--threads <n>", "threads sharing each step's batch (data-parallel; --batch must be divisible by it; results depend on it)", integer(1, 64), 1)
    .option("--seed <s>", "seed for initialisation and data sampling", integer(0, 2 ** 32 - 1), 0)
    .option("--force", "overwrite --out if it exists")
    .option("--quiet", "no progress")
    .action(runTrainModel);
}

/** --checkpoint, --checkpoint-every (default `every`), --resume and the hidden --stop-after, for every train command. */
function checkpointOptions(cmd: Command, every: number): Command {
  return cmd
    .option("--checkpoint <file>", "save training state here (periodically, on Ctrl-C, at the end)")
    .option("--checkpoint-every <n>", "steps between checkpoints", integer(1, 100_000_000), every)
    .option("--resume", "continue from --checkpoint (same data and options)")
    .addOption(new Option("--stop-after <n>", "stop after this many steps, with a checkpoint").argParser(integer(1, 100_000_000)).hideHelp());
}

/** The options that size a llama model and its training (and checkpoint it), shared by `train draft` and `train model`. */
function llamaTrainingOptions(cmd: Command, d: { dim: number; hidden: number; context: number; steps: number; batch: number }): Command {
  cmd
    .option("--dim <n>", "embedding width", integer(4, 4096), d.dim)
    .option("--layers <n>", "transformer blocks", integer(1, 64), 2)
    .option("--heads <n>", "attention heads", integer(1, 64), 4)
    .option("--kv-heads <n>", "key/value heads (grouped-query attention)", integer(1, 64), 2)
    .option("--hidden <n>", "feed-forward width", integer(1, 16384), d.hidden)
    .option("--context <n>", "training window in tokens", integer(2, 4096), d.context)
    .option("--steps <n>", "optimizer steps", integer(1, 100_000_000), d.steps)
    .option("--batch <b>", "windows per step", integer(1, 4096), d.batch)
    .option("--lr <lr>", "peak learning rate (AdamW, warm-up then cosine)", real(0, 10, { minExclusive: true }), 3e-3);
  return checkpointOptions(cmd, 100);
}

/** The checks before any work: --resume and --stop-after need --checkpoint; --out is not overwritten without --force. */
function checkOutput(o: CheckpointCliOptions): void {
  if (o.resume && !o.checkpoint) throw new SpecdecError("--resume needs --checkpoint FILE");
  if (existsSync(o.out) && !o.force) throw new SpecdecError(`${o.out} already exists (refusing to overwrite it; use --force)`);
  if (o.stopAfter !== undefined && !o.checkpoint) throw new SpecdecError("--stop-after needs --checkpoint FILE");
}

/**
 * Run a trainer with Ctrl-C wired to its shouldStop. A run stopped by --stop-after prints where
 * its checkpoint is and gives undefined; one stopped by Ctrl-C is a one-line error saying how to
 * resume. Otherwise the result.
 */
async function runInterruptible<R extends { stopped: boolean; step: number }>(o: CheckpointCliOptions, steps: number, bars: Bars, run: (hooks: CheckpointHooks) => Promise<R>): Promise<R | undefined> {
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.once("SIGINT", onSigint);
  let result: R;
  try {
    result = await run({ checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, resume: o.resume, stopAfter: o.stopAfter, shouldStop: () => interrupted });
  } finally {
    bars.stop();
    process.off("SIGINT", onSigint);
  }
  if (!result.stopped) return result;
  if (interrupted)
    throw new SpecdecError(
      o.checkpoint ? `interrupted at step ${result.step} of ${steps}; checkpoint saved to ${o.checkpoint}: run the same command with --resume to continue` : `interrupted at step ${result.step} of ${steps} (no --checkpoint, progress lost)`,
    );
  process.stdout.write(`stopped after step ${result.step} of ${steps}; checkpoint saved to ${o.checkpoint}\n`);
  return undefined;
}

/** Training steps as progress: smoothed loss and accuracy, tokens per second since the run (or resume) began. */
function stepProgress(bars: Bars, tokensPerStep: number) {
  let t0 = NaN, from = 0, loss = NaN, acc = NaN;
  return (step: number, steps: number, stepLoss: number, stepAcc: number, ms: number, lr: number) => {
    if (Number.isNaN(t0)) {
      t0 = performance.now() - ms;
      from = step - 1;
    }
    loss = Number.isNaN(loss) ? stepLoss : 0.95 * loss + 0.05 * stepLoss;
    acc = Number.isNaN(acc) ? stepAcc : 0.95 * acc + 0.05 * stepAcc;
    const sec = (performance.now() - t0) / 1000;
    bars.update({ phase: "train", done: step, total: steps, loss, accuracy: acc, rate: ((step - from) * tokensPerStep) / sec, lr, eta: (sec / (step - from)) * (steps - step) });
  };
}

export interface TrainDraftCliOptions extends CheckpointCliOptions, Pick<DraftTrainConfig, "dim" | "layers" | "heads" | "kvHeads" | "hidden" | "context" | "steps" | "batch" | "lr" | "alpha" | "seed"> {
  model: string;
  data: string;
  val?: string;
  targets: DraftData;
  windows: number;
}

export async function runTrainDraft(o: TrainDraftCliOptions): Promise<void> {
  checkOutput(o);
  if (o.dim % o.heads !== 0 || o.heads % o.kvHeads !== 0) throw new SpecdecError(`--dim ${o.dim} must be a multiple of --heads ${o.heads}, and --heads a multiple of --kv-heads ${o.kvHeads}`);
  const data = readCorpus(o.data);
  let trainText = data.text;
  let valText: string;
  if (o.val !== undefined) valText = readCorpus(o.val, "validation text").text;
  else {
    const paras = paragraphs(data.text);
    if (paras.length < 2) throw new SpecdecError(`${o.data} has fewer than 2 paragraphs: give held-out text with --val`);
    const cut = Math.max(1, Math.floor(paras.length * 0.95));
    trainText = paras.slice(0, cut).join("\n");
    valText = paras.slice(cut).join("\n");
  }
  const target = await BuiltinTarget.load(o.model);
  const bars = progressBars(progressMode(o.quiet));
  const t0 = performance.now();
  const onStep = stepProgress(bars, o.batch * o.context);
  let windowsStart = NaN;
  const result = await runInterruptible(o, o.steps, bars, (hooks) =>
    trainDraftAsync(
      target,
      trainText,
      valText,
      { dim: o.dim, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, hidden: o.hidden, context: o.context, steps: o.steps, batch: o.batch, lr: o.lr, seed: o.seed, alpha: o.alpha, data: o.targets, maxWindows: o.windows },
      {
        ...hooks,
        onData: bars.log,
        onWindows: (done, total) => {
          if (Number.isNaN(windowsStart)) windowsStart = performance.now();
          bars.update({ phase: "data", label: "windows", unit: "windows", rateUnit: "windows/s", done, total, rate: done / ((performance.now() - windowsStart) / 1000) });
        },
        onStep: (i) => onStep(i.step, i.steps, i.loss.loss, i.loss.agree, i.ms, i.lr),
      },
    ),
  );
  if (!result) return;
  saveDraftGguf(o.out, result.params, o, target, { overwrite: o.force, name: `draft for ${basename(o.model)}` });
  const v = result.val;
  process.stdout.write(
    `trained a ${o.layers}-layer, dim-${o.dim} draft for ${basename(o.model)} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${o.steps} steps × ${o.batch} windows of ${o.context}${result.resumedFrom !== undefined ? `; resumed at step ${result.resumedFrom}` : ""})\n` +
      (v ? `held-out: KL to the target ${v.kl.toFixed(3)}, cross-entropy ${v.ce.toFixed(3)}, top-1 agreement with the target ${(100 * v.agree).toFixed(1)}%\n` : "") +
      `wrote ${o.out}\n`,
  );
}

export interface TrainModelCliOptions extends CheckpointCliOptions, Pick<ModelTrainConfig, "vocab" | "dim" | "layers" | "heads" | "kvHeads" | "hidden" | "context" | "steps" | "batch" | "lr" | "seed"> {
  data: string;
  val?: string;
  /** Data-parallel threads (default 1). */
  threads?: number;
}

export async function runTrainModel(o: TrainModelCliOptions): Promise<void> {
  checkOutput(o);
  if (o.dim % o.heads !== 0 || (o.dim / o.heads) % 2 !== 0 || o.heads % o.kvHeads !== 0)
    throw new SpecdecError(`--dim ${o.dim} must split into --heads ${o.heads} heads of an even size, and --heads be a multiple of --kv-heads ${o.kvHeads}`);
  const data = readCorpus(o.data);
  let trainText = data.text;
  let valText = "";
  if (o.val !== undefined) valText = readCorpus(o.val, "validation text").text;
  else {
    const paras = paragraphs(data.text);
    if (paras.length >= 20) {
      const cut = Math.floor(paras.length * 0.95);
      trainText = paras.slice(0, cut).join("\n");
      valText = paras.slice(cut).join("\n");
    }
  }
  const bars = progressBars(progressMode(o.quiet));
  const t0 = performance.now();
  const evalEvery = Math.max(1, Math.round(o.steps / 5));
  const onStep = stepProgress(bars, o.batch * o.context);
  const result = await runInterruptible(o, o.steps, bars, (hooks) =>
    trainModelAsync(
      trainText,
      { vocab: o.vocab, dim: o.dim, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, hidden: o.hidden, context: o.context, steps: o.steps, batch: o.batch, lr: o.lr, seed: o.seed, valText, evalEvery, threads: o.threads },
      {
        ...hooks,
        onData: bars.log,
        onTokenizer: (done, total) => {
          bars.update({ phase: "data", label: "tokenizer", unit: "merges", rateUnit: "merges/s", done, total, rate: done / ((performance.now() - t0) / 1000) });
        },
        onStep: (i) => onStep(i.step, i.steps, i.loss, i.accuracy, i.ms, i.lr),
        onEval: (e) => bars.log(`held-out at step ${e.step}: loss ${e.loss.toFixed(3)}  acc ${(100 * e.accuracy).toFixed(1)}%`),
      },
    ),
  );
  if (!result) return;
  saveModelGguf(o.out, result.params, result.arch, result.tokenizerEntries, { overwrite: o.force, name: `specdec model (${basename(o.data)})`, contextLength: o.context });
  const v = result.val;
  process.stdout.write(
    `trained a ${o.layers}-layer, dim-${o.dim} llama with a ${result.arch.vocab}-token BPE vocabulary in ${((performance.now() - t0) / 1000).toFixed(1)} s (${o.steps} steps × ${o.batch} windows of ${o.context}; ${result.trainTokens} training tokens${result.resumedFrom !== undefined ? `; resumed at step ${result.resumedFrom}` : ""})\n` +
      `final training loss ${result.losses.at(-1)?.toFixed(3)}` +
      (v ? `, held-out cross-entropy ${v.loss.toFixed(3)} (${v.tokens} tokens), next-token accuracy ${(100 * v.accuracy).toFixed(1)}%` : "") +
      `\nwrote ${o.out}\n`,
  );
}

/** Largest corpus read (a bound, so /dev/zero is an error rather than the end of the memory). */
export const MAX_CORPUS_BYTES = 2 ** 30;

/** Read a corpus: non-empty UTF-8 text, not binary. */
export function readCorpus(path: string, what = "corpus"): TrainText {
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
  return { text, hash: createHash("sha256").update(buf).digest("hex") };
}

/** Progress of a phase; `label`, `unit` and `rateUnit` name a data phase (default: Medusa's "data", positions, tok/s). */
interface BarProgress extends TrainProgress {
  label?: string;
  unit?: string;
  rateUnit?: string;
  /** Training (plain lines only): the learning rate and the seconds left. */
  lr?: number;
  eta?: number;
}

type ProgressMode = "bar" | "lines" | "off";

interface Bars {
  update(p: BarProgress): void;
  /** A message line (between bars on a TTY). */
  log(line: string): void;
  stop(): void;
}

/** A bar on a TTY, plain lines otherwise, nothing with --quiet. */
function progressMode(quiet: boolean | undefined): ProgressMode {
  return quiet ? "off" : process.stderr.isTTY === true ? "bar" : "lines";
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "-";
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/**
 * Progress display: "bar" draws a cli-progress bar per phase (training: loss, accuracy, tokens/s,
 * ETA); "lines" writes a training line every 5% of the steps (data phases: their messages only);
 * "off" nothing. Messages (log) go to stderr in "bar" and "lines" modes.
 */
function progressBars(mode: ProgressMode): Bars {
  if (mode === "off") return { update: () => {}, log: () => {}, stop: () => {} };
  if (mode === "lines") {
    let first: number | undefined;
    const update = (p: BarProgress) => {
      if (p.phase !== "train") return;
      first ??= p.done;
      const every = Math.max(1, Math.round(p.total / 20));
      if (p.done !== first && p.done % every !== 0 && p.done !== p.total) return;
      process.stderr.write(
        `step ${p.done}/${p.total}  loss ${p.loss?.toFixed(3) ?? "-"}  acc ${p.accuracy === undefined ? "-" : (100 * p.accuracy).toFixed(1) + "%"}` +
          (p.lr === undefined ? "" : `  lr ${p.lr.toExponential(2)}`) +
          `  ${p.rate === undefined || !Number.isFinite(p.rate) ? "-" : Math.round(p.rate)} tok/s  ETA ${p.eta === undefined ? "-" : formatSeconds(p.eta)}\n`,
      );
    };
    return { update, log: (line) => process.stderr.write(line + "\n"), stop: () => {} };
  }
  const payload = (p: BarProgress) => ({
    loss: p.loss === undefined ? "-" : p.loss.toFixed(3),
    acc: p.accuracy === undefined ? "-" : `${(100 * p.accuracy).toFixed(1)}%`,
    rate: p.rate === undefined || !Number.isFinite(p.rate) ? "-" : Math.round(p.rate).toString(),
  });
  let bar: cliProgress.SingleBar | undefined;
  let phase = "";
  const stop = () => {
    bar?.stop();
    bar = undefined;
    phase = "";
  };
  const update = (p: BarProgress) => {
    const key = `${p.phase}:${p.label ?? ""}`;
    if (key !== phase) {
      stop();
      phase = key;
      const format =
        p.phase === "train"
          ? "train |{bar}| {value}/{total} steps | loss {loss} | acc {acc} | {rate} tok/s | ETA {eta_formatted}"
          : `${(p.label ?? "data").padEnd(5)} |{bar}| {value}/{total} ${p.unit ?? "positions"} | {rate} ${p.rateUnit ?? "tok/s"} | ETA {eta_formatted}`;
      bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 50, fps: 5, barsize: 24 }, cliProgress.Presets.shades_classic);
      bar.start(p.total, p.done, payload(p));
    }
    bar!.update(p.done, payload(p));
  };
  const log = (line: string) => {
    stop();
    process.stderr.write(line + "\n");
  };
  return { update, log, stop };
}

export async function runTrainMedusa(o: TrainMedusaCliOptions): Promise<void> {
  if (o.val !== undefined && o.holdout !== undefined) throw new SpecdecError("give --holdout or --val, not both");
  checkOutput(o);
  const train = readCorpus(o.data);
  const val = o.val === undefined ? undefined : readCorpus(o.val, "validation text");
  const target = await BuiltinTarget.load(o.model);

  // A bar on a TTY; nothing otherwise (as before: medusa writes no plain progress lines).
  const bars = progressBars(!o.quiet && process.stderr.isTTY === true ? "bar" : "off");
  const result = await runInterruptible(o, o.steps, bars, (hooks) =>
    trainMedusa(
      target,
      train,
      val,
      {
        heads: o.heads,
        steps: o.steps,
        batch: o.batch,
        lr: o.lr,
        seed: o.seed,
        targets: o.targets,
        projection: o.projection,
        maxExamples: o.examples,
        valExamples: o.valExamples,
        continuation: o.continuation,
        ...(o.holdout !== undefined ? { holdout: o.holdout } : {}),
      },
      { ...hooks, onProgress: bars.update },
    ),
  );
  if (!result) return;
  saveMedusaHeads(o.out, result.heads, { hiddenSize: target.hiddenSize, vocabSize: target.vocabSize, vocabFingerprint: target.vocabFingerprint, name: basename(o.model) }, { overwrite: o.force });
  const lines = [
    `trained ${o.heads} Medusa heads for ${basename(o.model)} (targets ${o.targets}, projection ${o.projection}): ${result.step} steps × ${o.batch}${result.resumedFrom !== undefined ? ` (resumed at step ${result.resumedFrom})` : ""} in ${result.trainSeconds.toFixed(1)} s; data: ${result.trainExamples} training positions in ${result.dataSeconds.toFixed(1)} s`,
    `held-out accuracy (${result.valExamples} positions):`,
    ...result.eval.map((e, k) => `  head ${k} (token +${k + 2}): top-1 ${(100 * e.top1).toFixed(1)}%  top-5 ${(100 * e.top5).toFixed(1)}%  loss ${e.loss.toFixed(3)}`),
    `wrote ${o.out}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
