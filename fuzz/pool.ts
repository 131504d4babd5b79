// The parent's side of one worker process: fork it, hand it a case, watch the case's wall
// clock and the worker's resident memory, and judge what kills it. A dead or killed worker is
// replaced by a fresh one before the next case; a worker is also recycled after many cases or
// when its memory between cases creeps up, so one case's leftovers never count against another.

import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CaseVerdict } from "./outcome.js";
import { rssMiB } from "./rss.js";
import type { TargetName } from "./targets/target.js";
import type { RunRequest, WorkerMessage } from "./worker.js";

const WORKER = join(fileURLToPath(new URL(".", import.meta.url)), "worker.js");
const RSS_POLL_MS = 50;
const RECYCLE_AFTER_CASES = 2000;
/** Fork, import and seed loading of a fresh worker; not counted in any case's time. */
const START_TIMEOUT_MS = 120_000;

export interface PoolLimits {
  /** Resident memory a worker may reach during a case. */
  memoryMiB: number;
}

export interface CaseReport {
  id: string;
  target: TargetName;
  verdict: CaseVerdict;
  what: readonly string[];
  seedName?: string;
  ms: number;
  /** Highest resident memory of the worker seen during the case. */
  peakMiB: number;
}

export class FuzzWorker {
  private child?: ChildProcess;
  private ready?: Promise<void>;
  private stderrTail = "";
  private cases = 0;
  private started = 0;

  constructor(private readonly slot: number, private readonly scratchRoot: string, private readonly limits: PoolLimits) {}

  /** How many worker processes this slot has started (1 + restarts). */
  get starts(): number {
    return this.started;
  }

  private spawn(): Promise<void> {
    this.started++;
    const scratch = join(this.scratchRoot, `worker-${this.slot}-${this.started}`);
    // V8's heap gets the same limit as the whole process; native and WASM memory are watched through RSS.
    const child = fork(WORKER, [], {
      execArgv: [`--max-old-space-size=${this.limits.memoryMiB}`],
      env: { ...process.env, SPECDEC_FUZZ_SCRATCH: scratch },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      serialization: "advanced",
    });
    this.child = child;
    this.cases = 0;
    child.stderr!.on("data", (b: Buffer) => (this.stderrTail = (this.stderrTail + b.toString("utf8")).slice(-4000)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fuzz worker did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      child.once("message", (m: WorkerMessage) => {
        clearTimeout(timer);
        if (m.type === "ready") resolve();
        else reject(new Error(`fuzz worker sent ${m.type} before ready`));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`fuzz worker died while starting (code ${code}, signal ${signal}): ${this.stderrTail.trim().split("\n").slice(-3).join(" | ")}`));
      });
    });
  }

  private kill(): void {
    const c = this.child;
    this.child = undefined;
    this.ready = undefined;
    if (c && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }

  /** Run case `index` of `target` in this slot's worker, starting one if needed. */
  async run(seed: number, target: TargetName, index: number, timeLimitMs: number): Promise<CaseReport> {
    if (this.child && (this.cases >= RECYCLE_AFTER_CASES || rssMiB(this.child.pid!) > this.limits.memoryMiB / 2)) this.kill();
    if (!this.child) this.ready = this.spawn();
    await this.ready;
    const child = this.child!;
    this.cases++;
    this.stderrTail = "";
    const report: CaseReport = { id: `${target}:${index}`, target, verdict: { outcome: "crash", detail: "" }, what: [], ms: 0, peakMiB: 0 };
    const t0 = performance.now();
    return new Promise<CaseReport>((resolve) => {
      let done = false;
      const finish = (verdict: CaseVerdict, killWorker: boolean) => {
        if (done) return;
        done = true;
        clearInterval(watch);
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
        if (killWorker) this.kill();
        report.verdict = verdict;
        report.ms = performance.now() - t0;
        resolve(report);
      };
      const onMessage = (m: WorkerMessage) => {
        if (m.type === "started") Object.assign(report, { what: m.what, seedName: m.seedName });
        else if (m.type === "result") finish(m.verdict, false);
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        this.child = undefined;
        this.ready = undefined;
        const tail = this.stderrTail.trim().split("\n").slice(-2).join(" | ").slice(-300);
        if (/heap out of memory|Reached heap limit|Allocation failed/i.test(this.stderrTail)) finish({ outcome: "memory", detail: `V8 heap limit of ${this.limits.memoryMiB} MiB: ${tail}` }, false);
        else if (signal) finish({ outcome: "crash", detail: `signal ${signal}: ${tail}` }, false);
        else finish({ outcome: "crash", detail: `worker exited with code ${code}: ${tail}` }, false);
      };
      const watch = setInterval(() => {
        const rss = rssMiB(child.pid!);
        report.peakMiB = Math.max(report.peakMiB, rss);
        if (rss > this.limits.memoryMiB) finish({ outcome: "memory", detail: `resident memory reached ${rss} MiB (limit ${this.limits.memoryMiB} MiB)` }, true);
      }, RSS_POLL_MS);
      const timer = setTimeout(() => finish({ outcome: "hang", detail: `still running after ${timeLimitMs / 1000} s` }, true), timeLimitMs);
      child.on("message", onMessage);
      child.on("exit", onExit);
      child.send({ type: "run", seed, target, index } satisfies RunRequest);
    });
  }

  close(): void {
    const c = this.child;
    this.child = undefined;
    if (c && c.connected) c.disconnect(); // the worker removes its scratch folder and exits
  }
}
