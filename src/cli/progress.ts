// How `specdec train` shows a trainer's progress events (src/train/progress.ts): a cli-progress
// bar per phase on a TTY (data preparation; training with smoothed loss, accuracy, tokens/s and
// ETA), plain lines on stderr otherwise (data messages, and a training line every 5% of the
// steps), nothing with --quiet. The trainers only report; smoothing, rates and ETA are computed
// here.
import cliProgress from "cli-progress";
import type { PrepareProgress, ProgressHooks, TrainStep } from "../train/progress.js";

export type ProgressMode = "bar" | "lines" | "off";

/** A bar on a TTY, plain lines otherwise, nothing with --quiet. */
export function progressMode(quiet: boolean | undefined): ProgressMode {
  return quiet ? "off" : process.stderr.isTTY === true ? "bar" : "lines";
}

/** What one progress update shows. */
interface Shown {
  phase: "data" | "train";
  done: number;
  total: number;
  /** Data phases: the bar's label and units. */
  label?: string;
  unit?: string;
  rateUnit?: string;
  /** Training: smoothed loss and accuracy, the learning rate and the seconds left. */
  loss?: number;
  accuracy?: number;
  lr?: number;
  eta?: number;
  /** Units (tokens in training) per second in this phase. */
  rate?: number;
}

/** The progress display of one run. */
export interface ProgressDisplay {
  update(p: Shown): void;
  /** A message line (between bars on a TTY). */
  log(line: string): void;
  stop(): void;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "-";
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/**
 * "bar": a cli-progress bar per phase; "lines": a training line every 5% of the steps (data
 * phases: their messages only); "off": nothing. Messages (log) go to stderr in "bar" and
 * "lines" modes.
 */
export function progressDisplay(mode: ProgressMode): ProgressDisplay {
  if (mode === "off") return { update: () => {}, log: () => {}, stop: () => {} };
  if (mode === "lines") {
    let first: number | undefined;
    const update = (p: Shown) => {
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
  const payload = (p: Shown) => ({
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
  const update = (p: Shown) => {
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

/** How each kind of data preparation is labelled. */
const PREPARE_LABELS: Record<PrepareProgress["what"], { label: string; unit: string; rateUnit: string }> = {
  merges: { label: "tokenizer", unit: "merges", rateUnit: "merges/s" },
  windows: { label: "windows", unit: "windows", rateUnit: "windows/s" },
  positions: { label: "data", unit: "positions", rateUnit: "tok/s" },
  sequences: { label: "data", unit: "sequences", rateUnit: "sequences/s" },
};

/**
 * A trainer's progress callbacks drawing on `display`, made just before the run starts: data
 * messages as lines; data preparation with its rate since the phase began (the first phase: now;
 * the next: when the previous one last reported); training steps with the loss and accuracy
 * smoothed over steps (0.95 / 0.05), tokens per second (each step's own count, else `tokensPerStep`) and the time left,
 * all since the run (or its resume) began.
 */
export function progressHooks(display: ProgressDisplay, tokensPerStep: number): Required<Pick<ProgressHooks, "onData" | "onPrepare" | "onStep">> {
  let prepareStart = performance.now(), lastPrepare = prepareStart, preparing = "";
  let t0 = NaN, from = 0, loss = NaN, acc = NaN, tokens = 0;
  return {
    onData: (message) => display.log(message),
    onPrepare: (p) => {
      const now = performance.now();
      if (preparing !== "" && p.what !== preparing) prepareStart = lastPrepare;
      preparing = p.what;
      lastPrepare = now;
      display.update({ phase: "data", ...PREPARE_LABELS[p.what], done: p.done, total: p.total, rate: p.done / ((now - prepareStart) / 1000) });
    },
    onStep: (s: TrainStep) => {
      if (Number.isNaN(t0)) {
        t0 = performance.now() - s.ms;
        from = s.step - 1;
      }
      loss = Number.isNaN(loss) ? s.loss : 0.95 * loss + 0.05 * s.loss;
      acc = Number.isNaN(acc) ? s.accuracy : 0.95 * acc + 0.05 * s.accuracy;
      tokens += s.tokens ?? tokensPerStep;
      const sec = (performance.now() - t0) / 1000;
      display.update({ phase: "train", done: s.step, total: s.steps, loss, accuracy: acc, rate: tokens / sec, lr: s.lr, eta: (sec / (s.step - from)) * (s.steps - s.step) });
    },
  };
}
