// `specdec train medusa | eagle | draft | model`: self-distil Medusa heads or an EAGLE head for a
// target, distil a draft model from a target, or train a tokenizer and a small llama model from
// scratch, on a text corpus. All of them checkpoint and resume (--checkpoint FILE, --checkpoint-every N, --resume;
// Ctrl-C saves a checkpoint and says how to resume; hidden --stop-after N for tests), wired once
// (checkpointOptions, checkOutput, runInterruptible), and show progress (progress.ts: a bar on a
// TTY, plain lines otherwise, nothing with --quiet). `train model --threads N` shares each
// step's batch among N threads (data-parallel worker threads: dataParallel.ts). The trainers'
// errors about their options name the options; here they are said with the flags (TRAIN_FLAGS).
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { Command, Option } from "commander";
import { BuiltinTarget } from "../targets/builtin.js";
import { SpecdecError } from "../errors.js";
import { saveMedusaHeads } from "../drafters/medusaHeads.js";
import { saveEagleHead } from "../drafters/eagleHeads.js";
import { MAX_BPE_VOCAB } from "../train/bpeTrainer.js";
import { checkCheckpointHooks, type CheckpointHooks } from "../train/checkpoint.js";
import { DRAFT_HOLDOUT, MODEL_HOLDOUT, readCorpus, trainingTexts } from "../train/corpus.js";
import { saveDraftGguf, trainDraftAsync, type DraftData, type DraftTrainConfig } from "../train/draftTrainer.js";
import { EAGLE_TRAIN_DEFAULTS, trainEagle } from "../train/eagleTrainer.js";
import { MEDUSA_TRAIN_DEFAULTS, trainMedusa, type MedusaProjection, type MedusaTargets } from "../train/medusaTrainer.js";
import { saveModelGguf, trainModelAsync, type ModelTrainConfig } from "../train/modelTrainer.js";
import { TrainOptionError } from "../train/optionError.js";
import { integer, real } from "./options.js";
import { progressDisplay, progressHooks, progressMode, type ProgressDisplay } from "./progress.js";

/** The flag of each trainer option that the trainers' errors name (TrainOptionError). */
export const TRAIN_FLAGS: Readonly<Record<string, string>> = {
  resume: "--resume",
  checkpoint: "--checkpoint",
  batch: "--batch",
  threads: "--threads",
  heads: "--heads",
  holdout: "--holdout",
  val: "--val",
  unroll: "--unroll",
  noise: "--noise",
  wCls: "--cls-weight",
};

/** A trainer's error as the command line says it: options named by their flags. */
function withFlags(e: unknown): unknown {
  return e instanceof TrainOptionError ? new SpecdecError(e.describe((name) => TRAIN_FLAGS[name] ?? name)) : e;
}

/** An action whose trainer errors name flags. */
function action<A extends unknown[]>(run: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await run(...args);
    } catch (e) {
      throw withFlags(e);
    }
  };
}

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

export interface TrainEagleCliOptions extends CheckpointCliOptions {
  model: string;
  data: string;
  layers: number;
  hidden: number;
  unroll: number;
  clsWeight: number;
  noise: number;
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  holdout?: number;
  val?: string;
  sequences: number;
  valSequences: number;
  continuation: number;
}

/** Add `train medusa`, `train eagle`, `train draft` and `train model` to the program. */
export function addTrainCommand(cli: Command): void {
  const train = cli.command("train").description("train helpers for a target model");
  const d = MEDUSA_TRAIN_DEFAULTS;
  const medusa = selfDistillationCommand(train, "medusa", "Medusa heads", "heads file to write (GGUF), for generate --method medusa --medusa FILE", { ...d, batchHelp: "positions per step", batchMax: 65536 })
    .option("--heads <k>", "number of heads", integer(1, 64), d.heads)
    .addOption(new Option("--targets <kind>", "labels: greedy = the target's own greedy continuation (exact, on generated text); corpus = the corpus tokens; argmax = the target's next-token argmax at corpus positions (approximation)").choices(["greedy", "corpus", "argmax"]).default(d.targets))
    .addOption(new Option("--projection <kind>", "own = each head trains its own vocabulary projection (from the target's); shared = the target's output matrix, frozen (smaller file)").choices(["own", "shared"]).default(d.projection))
    .option("--examples <n>", "most training positions taken from the corpus", integer(1, 100_000_000), d.maxExamples)
    .option("--val-examples <n>", "most held-out positions evaluated", integer(1, 100_000_000), d.valExamples)
    .option("--continuation <n>", "greedy tokens generated after each prompt (--targets greedy)", integer(1, 1_000_000), d.continuation);
  finish(checkpointOptions(medusa, 500), runTrainMedusa);

  const e = EAGLE_TRAIN_DEFAULTS;
  const eagle = selfDistillationCommand(train, "eagle", "an EAGLE head (one decoder block over the target's features)", "head file to write (GGUF), for generate --method eagle --eagle FILE", { ...e, batchHelp: "sequences per step", batchMax: 4096 })
    .option("--layers <n>", "decoder blocks in the head", integer(1, 8), e.layers)
    .option("--hidden <n>", "feed-forward width of the head (0 = the target's)", integer(0, 1 << 18), e.hidden)
    .option("--unroll <n>", "drafting steps unrolled in training (the head learns from its own predicted features)", integer(1, 16), e.unroll)
    .option("--cls-weight <w>", "weight of the token loss (KL to the target's next-token distribution) next to the feature regression (weight 1)", real(0, 1000), e.wCls)
    .option("--noise <a>", "uniform noise U(-a, a) on the true input features", real(0, 9.99), e.noise)
    .option("--sequences <n>", "most training sequences (a paragraph prefix and the target's greedy continuation) prepared", integer(1, 100_000_000), e.sequences)
    .option("--val-sequences <n>", "most held-out sequences evaluated", integer(1, 100_000_000), e.valSequences)
    .option("--continuation <n>", "greedy tokens generated after each prompt", integer(1, 1_000_000), e.continuation);
  finish(checkpointOptions(eagle, 100), runTrainEagle);

  // Defaults: the configuration measured with bench/trainDraft.ts (docs/measurements.md, "A distilled draft model").
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
    .option("--seed <s>", "seed for initialisation, data and shuffling", integer(0, 2 ** 32 - 1), 0);
  finish(draft, runTrainDraft);

  const model = train
    .command("model")
    .description("train a byte-level BPE tokenizer and a small llama model from scratch on a text corpus (one paragraph per line)")
    .requiredOption("--data <file>", "training text (UTF-8, one paragraph per line)")
    .requiredOption("--out <file>", "where to write the model (GGUF; loads in llama.cpp and the built-in engine)")
    .option("--val <file>", "held-out text (default: the last 5% of --data's paragraphs when it has 20 or more)")
    .option("--vocab <n>", "vocabulary size (256 bytes + merges + <|endoftext|>)", integer(257, MAX_BPE_VOCAB), 1024);
  llamaTrainingOptions(model, { dim: 64, hidden: 176, context: 128, steps: 500, batch: 8 })
    .option("--threads <n>", "threads sharing each step's batch (data-parallel; --batch must be divisible by it; results depend on it)", integer(1, 64), 1)
    .option("--seed <s>", "seed for initialisation and data sampling", integer(0, 2 ** 32 - 1), 0);
  finish(model, runTrainModel);
}

/**
 * A `train` subcommand that self-distils a helper for a target on the built-in engine (Medusa
 * heads, an EAGLE head): the target, the corpus, the output, the optimizer's steps, batch,
 * learning rate and seed, and the held-out text.
 */
function selfDistillationCommand(
  train: Command,
  name: string,
  what: string,
  outHelp: string,
  d: { steps: number; batch: number; lr: number; seed: number; holdout: number; batchHelp: string; batchMax: number },
): Command {
  return train
    .command(name)
    .description(`self-distil ${what} for a target (builtin engine) on a text corpus, one paragraph per line`)
    .requiredOption("--model <file>", "target model (GGUF)")
    .requiredOption("--data <file>", "training corpus (UTF-8 text)")
    .requiredOption("--out <file>", outHelp)
    .option("--steps <n>", "optimizer steps", integer(1, 100_000_000), d.steps)
    .option("--batch <b>", d.batchHelp, integer(1, d.batchMax), d.batch)
    .option("--lr <lr>", "peak learning rate (AdamW, warm-up then cosine)", real(0, 10, { minExclusive: true }), d.lr)
    .option("--seed <s>", "seed for initialisation, data and shuffling", integer(0, 2 ** 32 - 1), d.seed)
    .option("--holdout <fraction>", `fraction of the corpus's paragraphs (its end) held out for evaluation (default ${d.holdout})`, real(0, 1, { minExclusive: true }))
    .option("--val <file>", "held-out text for evaluation instead of --holdout");
}

/** --checkpoint, --checkpoint-every (default `every`), --resume and the hidden --stop-after, for every train command. */
/** The options every train command ends with (--force, --quiet), and its action. */
function finish<A extends unknown[]>(cmd: Command, run: (...args: A) => Promise<void>): void {
  cmd.option("--force", "overwrite --out if it exists").option("--quiet", "no progress").action(action(run));
}

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
  checkCheckpointHooks(o);
  if (existsSync(o.out) && !o.force) throw new SpecdecError(`${o.out} already exists (refusing to overwrite it; use --force)`);
  if (o.stopAfter !== undefined && !o.checkpoint) throw new SpecdecError("--stop-after needs --checkpoint FILE");
}

/**
 * Run a trainer with Ctrl-C wired to its shouldStop. A run stopped by --stop-after prints where
 * its checkpoint is and gives undefined; one stopped by Ctrl-C is a one-line error saying how to
 * resume. Otherwise the result.
 */
async function runInterruptible<R extends { stopped: boolean; step: number }>(o: CheckpointCliOptions, steps: number, bars: ProgressDisplay, run: (hooks: CheckpointHooks) => Promise<R>): Promise<R | undefined> {
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
  const texts = trainingTexts(readCorpus(o.data).text, o.val === undefined ? undefined : readCorpus(o.val, "validation text").text, DRAFT_HOLDOUT, o.data);
  const target = await BuiltinTarget.load(o.model);
  const bars = progressDisplay(progressMode(o.quiet));
  const t0 = performance.now();
  const result = await runInterruptible(o, o.steps, bars, (hooks) =>
    trainDraftAsync(
      target,
      texts.train,
      texts.val,
      { dim: o.dim, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, hidden: o.hidden, context: o.context, steps: o.steps, batch: o.batch, lr: o.lr, seed: o.seed, alpha: o.alpha, data: o.targets, maxWindows: o.windows },
      { ...hooks, ...progressHooks(bars, o.batch * o.context) },
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
  const texts = trainingTexts(readCorpus(o.data).text, o.val === undefined ? undefined : readCorpus(o.val, "validation text").text, MODEL_HOLDOUT, o.data);
  const bars = progressDisplay(progressMode(o.quiet));
  const t0 = performance.now();
  const evalEvery = Math.max(1, Math.round(o.steps / 5));
  const result = await runInterruptible(o, o.steps, bars, (hooks) =>
    trainModelAsync(
      texts.train,
      { vocab: o.vocab, dim: o.dim, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, hidden: o.hidden, context: o.context, steps: o.steps, batch: o.batch, lr: o.lr, seed: o.seed, valText: texts.val, evalEvery, threads: o.threads },
      {
        ...hooks,
        ...progressHooks(bars, o.batch * o.context),
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

/** What `train medusa` and `train eagle` start from: the checks, the corpus and held-out text, the target, the progress display. */
async function selfDistillationInputs(o: CheckpointCliOptions & { model: string; data: string; val?: string; holdout?: number }) {
  if (o.val !== undefined && o.holdout !== undefined) throw new SpecdecError("give --holdout or --val, not both");
  checkOutput(o);
  const train = readCorpus(o.data);
  const val = o.val === undefined ? undefined : readCorpus(o.val, "validation text");
  const target = await BuiltinTarget.load(o.model);
  return { train, val, target, bars: progressDisplay(progressMode(o.quiet)) };
}

export async function runTrainMedusa(o: TrainMedusaCliOptions): Promise<void> {
  const { train, val, target, bars } = await selfDistillationInputs(o);
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
      { ...hooks, ...progressHooks(bars, o.batch) },
    ),
  );
  if (!result) return;
  saveMedusaHeads(o.out, result.heads, { hiddenSize: target.hiddenSize, vocabSize: target.vocabSize, vocabFingerprint: target.vocab.fingerprint, name: basename(o.model) }, { overwrite: o.force });
  const lines = [
    `trained ${o.heads} Medusa heads for ${basename(o.model)} (targets ${o.targets}, projection ${o.projection}): ${result.step} steps × ${o.batch}${result.resumedFrom !== undefined ? ` (resumed at step ${result.resumedFrom})` : ""} in ${result.trainSeconds.toFixed(1)} s; data: ${result.trainExamples} training positions in ${result.dataSeconds.toFixed(1)} s`,
    `held-out accuracy (${result.valExamples} positions):`,
    ...result.eval.map((e, k) => `  head ${k} (token +${k + 2}): top-1 ${(100 * e.top1).toFixed(1)}%  top-5 ${(100 * e.top5).toFixed(1)}%  loss ${e.loss.toFixed(3)}`),
    `wrote ${o.out}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

export async function runTrainEagle(o: TrainEagleCliOptions): Promise<void> {
  const { train, val, target, bars } = await selfDistillationInputs(o);
  const result = await runInterruptible(o, o.steps, bars, (hooks) =>
    trainEagle(
      target,
      train,
      val,
      {
        layers: o.layers, hidden: o.hidden, unroll: o.unroll, wCls: o.clsWeight, noise: o.noise, steps: o.steps, batch: o.batch, lr: o.lr, seed: o.seed,
        sequences: o.sequences, valSequences: o.valSequences, continuation: o.continuation, ...(o.holdout !== undefined ? { holdout: o.holdout } : {}),
      },
      { ...hooks, ...progressHooks(bars, 0) },
    ),
  );
  if (!result) return;
  const m = result.model;
  saveEagleHead(o.out, m.shape, m.tensors(), { vocabFingerprint: target.vocab.fingerprint, name: basename(o.model) }, { overwrite: o.force });
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `trained an EAGLE head (${m.shape.layers} block${m.shape.layers > 1 ? "s" : ""}, dim ${m.shape.dim}, ffn ${m.shape.hidden}, unroll ${o.unroll}) for ${basename(o.model)}: ${result.step} steps × ${o.batch} sequences${result.resumedFrom !== undefined ? ` (resumed at step ${result.resumedFrom})` : ""} in ${result.trainSeconds.toFixed(1)} s; data: ${result.trainSequences} sequences (${result.trainEntries} positions) in ${result.dataSeconds.toFixed(1)} s`,
    `held-out (${result.valSequences} sequences, drafts from the target's own continuations):`,
    ...result.eval.map((d) => `  depth ${d.depth}: top-1 ${pct(d.top1)}  top-4 ${pct(d.top4)}  chain of top-1 guesses right so far ${pct(d.chain)}`),
    `wrote ${o.out}`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
