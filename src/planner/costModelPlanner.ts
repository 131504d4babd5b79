// The cost model: each step, the budget that maximises expected tokens per second,
//   rate(N) = (1 + A(N)) / (d(N) + c(1 + N)),
// where c(n) is the measured cost of a pass over n tokens (passCost.ts, at the cheapest thread
// count for that size), d(N) the drafting cost of N guesses (learned online), and A(N) the
// expected number of accepted guesses when the drafter may propose N nodes: the sum over node
// ranks r < N of p_r, the running probability that the r-th node a drafter proposes (in its own
// order: drafters put their likeliest guesses first) ends up on the accepted path — a rank the
// pass was padded to for want of a guess counts as proposed and rejected. N = 0 is "do not
// speculate": one plain pass, rate 1 / c(1), chosen unless a budget is expected to beat it by
// SPECULATION_MARGIN.
//
// Where the target reuses a compute graph for a pass shaped like the last one (llama.cpp), c(n)
// is the cost of repeating a size and a change of size costs s more (passCost's switchMs, then
// learned online). Starting to speculate is charged two changes (there and, later, back), another
// speculative size one, stopping none (paid on the way in); and a proposal shorter than planned
// is padded to the planned size when that costs less than the two changes it avoids.
//
// Declining teaches nothing, so now and then it probes with one guess. A probe's price is what
// it cost beyond a plain pass (drafting — a feature drafter then catches up with every token
// since its last proposal —, the longer pass, the changes of shape there and back); probes are
// spaced so that they take at most PROBE_SHARE of plain decoding's time, and never closer than
// 16 steps, doubling while they do not pay.
//
// A generation's first proposal pays for the drafter catching up with the prompt (a draft model's
// or a head's prefill) and for a pass slower than later ones (the first of a new shape after the
// prefill and plain passes): learned as what that proposal's drafting cost beyond the drafting
// line plus what its pass cost beyond the running speculative ratio and a change of shape. Until a
// generation has proposed, the planner speculates only where the time it expects to save over the
// rest of the generation (the tokens still wanted, at most the generations' running mean length
// less those made, or as many as made if more) exceeds that price: on a small target short
// answers never earn it back.
//
// A drafter that reads hidden states makes even a plain pass dearer. Where speculating is not
// expected to pay from a generation's start, the planner leaves that drafter out of the
// generation (attach: plain passes without hidden states); every ATTACH_EVERY-th such generation,
// doubling up to ATTACH_EVERY_MAX, it takes part and probes at once, so the planner learns if
// guessing pays again.

import type { Planner, StepLimits, StepPlan, StepRecord } from "./planner.js";
import { bestCost, type PassCostTable } from "./passCost.js";

/** The weight of a probe's pass in the speculative passes' running time ratio (a repeated pass weighs 0.1). */
export const PROBE_WEIGHT = 0.5;

/** The most of plain decoding's time that probes may take while the planner declines. */
export const PROBE_SHARE = 0.02;

/**
 * How much faster than plain decoding speculation must be expected to run before the planner
 * speculates. The estimates err both ways by several percent on a noisy machine, and near
 * break-even speculating loses more than it can win: on the tiny default target EAGLE at budget 6
 * was expected about even and ran at 0.80x plain (docs/measurements.md, 2026-12-03).
 */
export const SPECULATION_MARGIN = 0.05;

/** Generations left out in a row before one takes part (and probes); doubles while it does not pay. */
export const ATTACH_EVERY = 16;
export const ATTACH_EVERY_MAX = 256;

export interface CostModelOptions {
  /** Most guesses per step considered. Default 32. */
  maxNodes?: number;
  /** Weight of old observations per new one (exponential forgetting). Default 0.98 (about the last 50 steps). */
  forget?: number;
  /** Prior acceptance of the first guess, and the factor from each rank's estimate to the next one's prior. Default 0.6, 0.85. */
  prior?: { first: number; decay: number };
  /** Pseudo-observations the prior is worth. Default 2. */
  priorWeight?: number;
}

/** What the cost model believes now (for statistics and benchmarks). */
export interface CostModelState {
  /** p_r for the first ranks. */
  readonly acceptanceByRank: number[];
  /** Drafting ms: fixed per step and per guess. */
  readonly draftMs: { perStep: number; perNode: number };
  /** Observed pass time over the table's, running ratios: plain passes, and passes with guesses. */
  readonly passScale: { plain: number; speculative: number };
  /** What a change of pass size costs, ms (0 where the target does not reuse graphs). */
  readonly switchMs: number;
  /** What the last probe (one guess while declining) cost beyond a plain pass, ms. */
  readonly probeMs: number;
  /** What a generation's first proposal costs beyond the drafting line and its pass beyond later passes (the drafter catching up with the prompt, a first pass of its shape), ms. */
  readonly catchUpMs: number;
}

export class CostModelPlanner implements Planner {
  readonly name = "cost model";
  private readonly maxNodes: number;
  private readonly forget: number;
  private readonly prior: { first: number; decay: number };
  private readonly priorWeight: number;
  private readonly proposed: number[] = []; // per rank: (forgetting) count of steps that proposed it
  private readonly accepted: number[] = []; // per rank: how many of those accepted it
  // Drafting cost: the last observations (guesses, ms); medians of them give the line
  // ms = perStep + perNode · guesses, robust to a step that also paid for JIT or a load burst.
  private readonly drafts: { nodes: number; ms: number }[] = [];
  private line: { perStep: number; perNode: number } | undefined; // fitted to drafts, until the next one
  // Observed / tabled pass time, for plain passes and for passes with guesses apart: a step with
  // guesses also pays for what the table leaves out (rolling the rejected guesses back, the
  // drafter's observe, a thread count other than plain decoding's), which on a small model can
  // decide whether speculation pays.
  private scalePlain = 1;
  private scaleSpec = 1;
  private switchMs: number; // a change of pass size (llama.cpp: a new graph), ms
  private readonly shapes: boolean; // whether the table prices changes of shape at all
  private lastPass = 0; // tokens in the last pass (0: none yet in this generation)
  private readonly passes: { threads: string; ms: number }[] = []; // bestCost by pass size, filled on use
  private fresh = true; // no proposal yet in this generation
  private idle = 0; // steps since the last speculation
  private probeEvery = 16; // steps without speculation before a probe (doubles while probes do not pay)
  private probeMs = 0; // what the last probe cost beyond a plain pass, ms
  private probing = false; // the step just planned is a probe
  private catchUpMs: number | undefined; // a first proposal's drafting beyond the line (running; undefined until seen)
  private meanTokens: number | undefined; // tokens per generation (running; undefined before the first ends)
  private tokensNow = 0; // tokens committed in this generation
  private detached = false; // this generation runs without the drafter (attach said no)
  private leftOut = 0; // generations left out since the last that took part
  private attachEvery = ATTACH_EVERY;
  private probeNow = false; // a generation taken part in after being left out: probe at its first step

  constructor(
    readonly cost: PassCostTable,
    options: CostModelOptions = {},
  ) {
    this.maxNodes = options.maxNodes ?? 32;
    this.forget = options.forget ?? 0.98;
    this.prior = options.prior ?? { first: 0.6, decay: 0.85 };
    this.priorWeight = options.priorWeight ?? 2;
    this.shapes = cost.switchMs !== undefined;
    this.switchMs = cost.switchMs?.[bestCost(cost, 1).threads] ?? 0;
  }

  /** Changes of pass shape a step of n guesses is charged, after a pass of `last` tokens. */
  private switches(n: number): number {
    if (!this.shapes || n === 0 || this.lastPass === 1 + n) return 0;
    return this.lastPass > 1 ? 1 : 2;
  }

  /** p_r for ranks 0..n-1: observations smoothed towards a prior that decays from the rank before. */
  acceptance(n: number): number[] {
    const p: number[] = [];
    let prior = this.prior.first;
    for (let r = 0; r < n; r++) {
      const w = this.priorWeight;
      p[r] = ((this.accepted[r] ?? 0) + w * prior) / ((this.proposed[r] ?? 0) + w);
      prior = p[r] * this.prior.decay;
    }
    return p;
  }

  /** Expected drafting ms for a budget of n guesses. */
  draftCost(n: number, line = this.draftLine()): number {
    return n === 0 ? 0 : Math.max(0, line.perStep + line.perNode * n);
  }

  /** bestCost of a pass of n tokens, from a table of them made once (the table does not change). */
  private pass(n: number): { threads: string; ms: number } {
    return (this.passes[n] ??= bestCost(this.cost, n));
  }

  /** Expected tokens per ms for every budget 0..max, and the best. */
  rates(limits: StepLimits): { rates: number[]; best: number } {
    const max = Math.max(0, Math.min(this.maxNodes, limits.maxNodes, this.cost.sizes[this.cost.sizes.length - 1] - 1));
    const p = this.acceptance(max);
    const line = this.draftLine();
    const rates: number[] = [];
    let best = 0, sum = 0;
    for (let n = 0; n <= max; n++) {
      if (n > 0) sum += p[n - 1];
      rates[n] = (1 + sum) / (this.draftCost(n, line) + (n === 0 ? this.scalePlain : this.scaleSpec) * this.pass(1 + n).ms + this.switches(n) * this.switchMs);
      if (rates[n] > rates[best]) best = n;
    }
    if (rates[best] < (1 + SPECULATION_MARGIN) * rates[0]) best = 0;
    return { rates, best };
  }

  attach(maxTokens: number): boolean {
    this.endGeneration();
    const limits = { maxDepth: Math.max(0, maxTokens - 1), maxNodes: this.maxNodes };
    // Judged with speculative passes no slower than plain ones over the table: a burst of slow
    // passes must not leave out generations that would have paid (nothing corrects it while left out).
    const scaleSpec = this.scaleSpec;
    this.scaleSpec = Math.min(scaleSpec, this.scalePlain);
    const { rates, best } = this.rates(limits);
    this.scaleSpec = scaleSpec;
    this.detached = !(best > 0 && this.catchUpPays(limits, rates, best));
    if (!this.detached) this.attachEvery = ATTACH_EVERY;
    else if (++this.leftOut >= this.attachEvery) {
      this.detached = false;
      this.probeNow = true;
      this.attachEvery = Math.min(2 * this.attachEvery, ATTACH_EVERY_MAX);
    }
    if (!this.detached) this.leftOut = 0;
    return !this.detached;
  }

  plan(limits: StepLimits): StepPlan {
    if (this.detached) {
      const threads = Number(this.pass(1).threads);
      return { maxDepth: 0, maxNodes: 0, threads: threads > 0 ? threads : undefined };
    }
    const { rates, best: optimum } = this.rates(limits);
    let best = optimum;
    this.probing = false;
    if (best === 0 && limits.maxDepth > 0 && limits.maxNodes > 0) {
      // Not speculating teaches nothing: now and then, probe with one guess (spaced by its price).
      const gap = this.probeMs / (PROBE_SHARE * this.scalePlain * this.pass(1).ms);
      if (this.probeNow || ++this.idle >= Math.max(this.probeEvery, gap)) {
        best = 1;
        this.probing = true;
        this.probeNow = false;
        this.idle = 0;
        this.probeEvery = Math.min(2 * this.probeEvery, 1024);
      }
    } else if (best > 0 && this.fresh && !this.catchUpPays(limits, rates, best)) {
      best = 0;
    } else if (best > 0) {
      this.idle = 0;
      this.probeEvery = 16;
    }
    const threads = Number(this.pass(1 + best).threads);
    const maxNodes = Math.min(best, limits.maxNodes);
    return { maxDepth: Math.min(limits.maxDepth, maxNodes), maxNodes, threads: threads > 0 ? threads : undefined };
  }

  /** Whether speculating at `best` from now on saves more than the first proposal's catching up costs. */
  private catchUpPays(limits: StepLimits, rates: number[], best: number): boolean {
    const wanted = limits.maxDepth + 1;
    // Tokens left: the mean length less those made, but at least as many as made (a generation
    // that has run long is likely to run on).
    const left = this.meanTokens === undefined ? wanted : Math.min(wanted, Math.max(1, this.meanTokens - this.tokensNow, this.tokensNow));
    return left * (1 / rates[0] - 1 / rates[best]) >= (this.catchUpMs ?? 0);
  }

  padTo(plan: StepPlan, nodes: number): number | undefined {
    const want = 1 + plan.maxNodes, got = 1 + nodes;
    if (!this.shapes || plan.maxNodes === 0 || got >= want) return undefined;
    const extra = this.scaleSpec * (this.pass(want).ms - this.pass(got).ms);
    return extra < 2 * this.switchMs ? want : undefined; // a shorter pass: a change now, one back later
  }

  begin(): void {
    this.endGeneration();
    this.fresh = true;
  }

  /** The last generation's length goes into the running mean (once: attach and begin both call it). */
  private endGeneration(): void {
    if (this.tokensNow > 0) this.meanTokens = this.meanTokens === undefined ? this.tokensNow : 0.7 * this.meanTokens + 0.3 * this.tokensNow;
    this.tokensNow = 0;
    this.lastPass = 0;
  }

  observe(step: StepRecord): void {
    // Passes without the drafter's hidden states say nothing of those the table measured.
    if (this.detached) return void (this.tokensNow += step.path.length + 1);
    const onPath = new Set(step.path);
    // Filler the pass was padded with stands for guesses the drafter did not make: paid for, never accepted.
    const size = step.passTokens ?? 1 + step.nodes;
    const tabled = this.pass(size).ms;
    for (let r = 0; r < Math.max(step.nodes, size - 1); r++) {
      this.proposed[r] = (this.proposed[r] ?? 0) * this.forget + 1;
      this.accepted[r] = (this.accepted[r] ?? 0) * this.forget + (onPath.has(r) ? 1 : 0);
    }
    this.tokensNow += step.path.length + 1;
    // The first proposal of a generation may pay for catching up with the prompt: not a sample
    // of the line, but of the catching up. Its pass too may run slower than its kind's running
    // ratio and a change of shape say (after the prefill and plain passes; the tiny default
    // target's first 2-token pass took 1.3-1.65 ms against ~0.53 settled): part of the entry.
    if (step.plan.maxNodes > 0 && this.fresh) {
      const drafting = Math.max(0, step.draftMs - this.draftCost(step.nodes));
      const change = this.shapes && size !== this.lastPass ? this.switchMs : 0;
      const passing = Math.max(0, step.passMs - this.scaleSpec * tabled - change);
      const excess = drafting + passing;
      this.catchUpMs = this.catchUpMs === undefined ? excess : 0.7 * this.catchUpMs + 0.3 * excess;
    }
    if (step.plan.maxNodes > 0 && !this.fresh) {
      this.drafts.push({ nodes: step.nodes, ms: step.draftMs });
      if (this.drafts.length > 32) this.drafts.shift();
      this.line = undefined;
    }
    if (step.plan.maxNodes > 0) this.fresh = false;
    const probe = this.probing && step.plan.maxNodes > 0;
    if (probe) {
      // Its price: drafting and the pass beyond a plain pass, and the change of shape back.
      const back = this.shapes && size !== 1 ? this.switchMs : 0;
      this.probeMs = Math.max(0, step.draftMs + step.passMs + back - this.scalePlain * this.pass(1).ms);
      this.probing = false;
    }
    if (tabled > 0 && step.passMs > 0) {
      const plain = size === 1;
      if (!this.shapes || size === this.lastPass) {
        const ratio = Math.min(10, Math.max(0.1, step.passMs / tabled));
        if (plain) this.scalePlain = 0.9 * this.scalePlain + 0.1 * ratio;
        else this.scaleSpec = 0.9 * this.scaleSpec + 0.1 * ratio;
      } else if (this.lastPass > 0) {
        // A change of shape: what the pass cost beyond a repeated pass of its size.
        const excess = step.passMs - (plain ? this.scalePlain : this.scaleSpec) * tabled;
        this.switchMs = 0.9 * this.switchMs + 0.1 * Math.min(10 * tabled, Math.max(0, excess));
        // While declining, a probe's pass is the only speculative pass seen: less the change of
        // shape, it corrects the speculative ratio (weighted as a deliberate measurement), so a
        // burst of slow passes does not keep the planner from speculating for good.
        if (probe && !plain) {
          const ratio = Math.min(10, Math.max(0.1, (step.passMs - this.switchMs) / tabled));
          this.scaleSpec = (1 - PROBE_WEIGHT) * this.scaleSpec + PROBE_WEIGHT * ratio;
        }
      }
    }
    this.lastPass = size;
  }

  state(): CostModelState {
    return { acceptanceByRank: this.acceptance(8), draftMs: this.draftLine(), passScale: { plain: this.scalePlain, speculative: this.scaleSpec }, switchMs: this.switchMs, probeMs: this.probeMs, catchUpMs: this.catchUpMs ?? 0 };
  }

  private draftLine(): { perStep: number; perNode: number } {
    return (this.line ??= this.fitDraftLine());
  }

  private fitDraftLine(): { perStep: number; perNode: number } {
    const empty = this.drafts.filter((d) => d.nodes === 0).map((d) => d.ms);
    const perStep = empty.length > 0 ? median(empty) : 0; // asked, found nothing: the fixed part
    const some = this.drafts.filter((d) => d.nodes > 0).map((d) => Math.max(0, d.ms - perStep) / d.nodes);
    return { perStep, perNode: some.length > 0 ? median(some) : 0 };
  }
}

/** The lower median: with two observations, the smaller (a spike needs company to count). */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}
