// The cost model picks each step's budget to maximise expected tokens per second; with an
// injected pass-cost table and acceptance estimates its choice must be the known optimum.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ATTACH_EVERY, CostModelPlanner, PROBE_SHARE, SPECULATION_MARGIN } from "../src/planner/costModelPlanner.js";
import { FixedPlanner } from "../src/planner/planner.js";
import { costAt, type PassCostTable } from "../src/planner/passCost.js";

const SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 17];
const table = (ms: (n: number) => number, threads: Record<string, (n: number) => number> = { "0": ms }): PassCostTable => ({
  sizes: SIZES,
  ms: Object.fromEntries(Object.entries(threads).map(([t, f]) => [t, SIZES.map(f)])),
  contextLength: 32,
  read: "argmax",
});
// Acceptance estimates injected as a prior no observation can move: p_r = first · decay^r.
const fixedAcceptance = (first: number, decay: number) => ({ prior: { first, decay }, priorWeight: 1e15 });
const LIMITS = { maxDepth: 16, maxNodes: 16 };

/** The optimum by brute force: argmax over N of (1 + sum_{r<N} p_r) / (draft(N) + c(1 + N)). */
function optimum(c: (n: number) => number, p: (r: number) => number, draft: (n: number) => number = () => 0, max = 16): number {
  let best = 0, bestRate = 1 / c(1), sum = 0;
  for (let n = 1; n <= max; n++) {
    sum += p(n - 1);
    const rate = (1 + sum) / ((n > 0 ? draft(n) : 0) + c(1 + n));
    if (rate > bestRate) [best, bestRate] = [n, rate];
  }
  return best;
}

test("compute-bound passes: the cost model declines to speculate", () => {
  const c = (n: number) => 0.95 * n; // a pass over n tokens costs 0.95 of n one-token passes
  const planner = new CostModelPlanner(table(c), fixedAcceptance(0.6, 0.85));
  assert.equal(optimum(c, (r) => 0.6 * 0.85 ** r), 0);
  assert.equal(planner.plan(LIMITS).maxNodes, 0);
});

test("memory-bound passes: it picks the brute-force optimum for several acceptance profiles", () => {
  const c = (n: number) => 1 + 0.08 * (n - 1);
  for (const [first, decay] of [[0.9, 0.95], [0.7, 0.8], [0.5, 0.6], [0.95, 0.99], [0.2, 0.5]]) {
    const planner = new CostModelPlanner(table(c), fixedAcceptance(first, decay));
    const want = optimum((n) => costAt(table(c), n, "0"), (r) => first * decay ** r);
    const got = planner.plan(LIMITS);
    assert.equal(got.maxNodes, want, `first ${first}, decay ${decay}`);
    assert.equal(got.maxDepth, Math.min(LIMITS.maxDepth, want));
  }
  // The step's limits cap the budget (the output left, the context's room).
  assert.equal(new CostModelPlanner(table(c), fixedAcceptance(0.95, 0.99)).plan({ maxDepth: 3, maxNodes: 3 }).maxNodes, 3);
});

test("near break-even it does not speculate: a budget must be expected to beat plain decoding by SPECULATION_MARGIN", () => {
  const c = (n: number) => 1 + 0.5 * (n - 1); // a 2-token pass costs 1.5 one-token passes
  // Only the first guess is ever accepted, so one guess is the best budget: rate (1 + first) / 1.5.
  const expected = (first: number) => (1 + first) / 1.5;
  const short = 1.5 * (1 + SPECULATION_MARGIN / 2) - 1; // expected SPECULATION_MARGIN / 2 faster
  const enough = 1.5 * (1 + 2 * SPECULATION_MARGIN) - 1; // expected twice the margin faster
  assert.equal(optimum(c, (r) => (r === 0 ? short : 0)), 1, "without the margin, one guess would be taken");
  assert.ok(expected(short) > 1 && expected(short) < 1 + SPECULATION_MARGIN);
  assert.equal(new CostModelPlanner(table(c), fixedAcceptance(short, 1e-9)).plan(LIMITS).maxNodes, 0);
  assert.equal(new CostModelPlanner(table(c), fixedAcceptance(enough, 1e-9)).plan(LIMITS).maxNodes, 1);
});

test("where speculating does not pay it leaves a hidden-state drafter out; every ATTACH_EVERY-th generation (doubling) takes part and probes at once", () => {
  const planner = new CostModelPlanner(table((n) => 0.95 * n), fixedAcceptance(0.6, 0.85));
  const attached: number[] = [];
  for (let g = 1; g <= 3 * ATTACH_EVERY; g++) {
    const on = planner.attach(128);
    planner.begin();
    const first = planner.plan(LIMITS).maxNodes;
    if (on) {
      attached.push(g);
      assert.equal(first, 1, "a generation taken part in probes at its first step");
    } else assert.equal(first, 0, "a generation left out is planned without guesses");
    planner.observe({ plan: { maxDepth: first, maxNodes: first }, nodes: first, path: [], draftMs: 0, passMs: 0.95 * (1 + first) });
  }
  assert.deepEqual(attached, [ATTACH_EVERY, 3 * ATTACH_EVERY]);
  // Where guessing pays, every generation takes part.
  const paying = new CostModelPlanner(table((n) => 1 + 0.08 * (n - 1)), fixedAcceptance(0.9, 0.95));
  for (let g = 0; g < 3; g++) {
    assert.equal(paying.attach(128), true);
    paying.begin();
    assert.ok(paying.plan(LIMITS).maxNodes > 0);
  }
  // A burst of slow speculative passes makes it decline within a generation, but it does not leave
  // the next generation out for that (nothing would correct the estimate while left out).
  const c = (n: number) => 1 + 0.08 * (n - 1);
  for (let i = 0; i < 60; i++) paying.observe({ plan: { maxDepth: 8, maxNodes: 8 }, nodes: 8, path: [], draftMs: 0, passMs: 10 * c(9) });
  assert.equal(paying.rates(LIMITS).best, 0);
  assert.equal(paying.attach(128), true);
});

test("drafting cost learned from observed steps moves the optimum", () => {
  const c = (n: number) => 1 + 0.08 * (n - 1);
  const planner = new CostModelPlanner(table(c), fixedAcceptance(0.9, 0.95));
  const free = planner.plan(LIMITS).maxNodes;
  planner.begin();
  // 0.3 ms per guess (a helper model): observed over a few steps (the first after begin is not a sample).
  for (let i = 0; i < 12; i++) planner.observe({ plan: { maxDepth: 8, maxNodes: 8 }, nodes: 1 + (i % 8), path: [], draftMs: 0.3 * (1 + (i % 8)), passMs: c(2 + (i % 8)) });
  const want = optimum(c, (r) => 0.9 * 0.95 ** r, (n) => 0.3 * n);
  assert.ok(want < free, `a costly drafter must guess less (${want} vs ${free})`);
  assert.equal(planner.plan(LIMITS).maxNodes, want);
});

test("acceptance observed per node rank replaces the prior", () => {
  const c = (n: number) => 1 + 0.1 * (n - 1);
  const planner = new CostModelPlanner(table(c), { forget: 1 });
  // Chains of 6 guesses whose first two are always accepted and the rest never.
  for (let i = 0; i < 400; i++) planner.observe({ plan: { maxDepth: 6, maxNodes: 6 }, nodes: 6, path: [0, 1], draftMs: 0, passMs: c(7) });
  const p = planner.acceptance(6);
  assert.ok(p[0] > 0.99 && p[1] > 0.99 && p[2] < 0.01 && p[5] < 0.01, p.join(" "));
  assert.equal(planner.plan(LIMITS).maxNodes, 2);
});

test("not speculating, it still probes now and then (with backoff), so it can learn that guessing pays again", () => {
  const c = (n: number) => n;
  const planner = new CostModelPlanner(table(c), fixedAcceptance(0.5, 0.5));
  const budgets = Array.from({ length: 16 + 32 + 1 }, () => planner.plan(LIMITS).maxNodes);
  assert.deepEqual(budgets.map((b, i) => (b > 0 ? i : -1)).filter((i) => i >= 0), [15, 47]);
});

test("a costly probe spaces the next one: probes take at most PROBE_SHARE of plain decoding's time", () => {
  const c = (n: number) => n;
  const planner = new CostModelPlanner(table(c), fixedAcceptance(0.5, 0.5));
  const plain = { plan: { maxDepth: 0, maxNodes: 0 }, nodes: 0, path: [], draftMs: 0, passMs: c(1) };
  let step = 0, first = -1;
  for (; first < 0; step++) {
    const plan = planner.plan(LIMITS);
    if (plan.maxNodes > 0) first = step;
    // The probe: 9 ms drafting (a head catching up with the prompt) and a 2-token pass, nothing accepted.
    planner.observe(plan.maxNodes > 0 ? { plan, nodes: 1, path: [], draftMs: 9, passMs: c(2) } : plain);
  }
  assert.equal(first, 15);
  assert.equal(planner.state().probeMs, 10); // 9 + 2 - 1
  let next = -1;
  for (; next < 0 && step < 2000; step++) {
    const plan = planner.plan(LIMITS);
    if (plan.maxNodes > 0) next = step;
    planner.observe(plain);
  }
  // 10 ms per probe at 2% of 1 ms per plain step: one probe per 500 steps (not after 32).
  assert.equal(next - first, 500);
  assert.ok(10 / (PROBE_SHARE * (next - first) * c(1)) <= 1 + 1e-9);
});

test("a budget the drafter leaves empty but the pass is padded for counts as a rejected guess", () => {
  const c = (n: number) => 1 + 0.1 * (n - 1);
  const planner = new CostModelPlanner({ ...table(c), switchMs: { "0": 0.5 } }, { forget: 1 });
  // One guess planned each step; the drafter finds one (accepted) every fourth step, else nothing, and the pass is padded to 2 tokens.
  for (let i = 0; i < 400; i++) {
    const found = i % 4 === 0;
    planner.observe({ plan: { maxDepth: 1, maxNodes: 1 }, nodes: found ? 1 : 0, path: found ? [0] : [], draftMs: 0, passMs: c(2), passTokens: 2 });
  }
  const p0 = planner.acceptance(1)[0];
  assert.ok(Math.abs(p0 - 0.25) < 0.01, String(p0));
});

test("the thread count of each pass is the cheapest for its size", () => {
  // One thread is faster for a single token, two for batches (as llama.cpp measured on a 100M model).
  const t = table((n) => n, { "1": (n) => 7 + 1.5 * (n - 1), "2": (n) => 9.5 + 0.3 * (n - 1) });
  const decline = new CostModelPlanner(t, fixedAcceptance(0.05, 0.1)).plan(LIMITS);
  assert.deepEqual([decline.maxNodes, decline.threads], [0, 1]);
  const speculate = new CostModelPlanner(t, fixedAcceptance(0.9, 0.95)).plan(LIMITS);
  assert.ok(speculate.maxNodes > 2);
  assert.equal(speculate.threads, 2);
});

test("where a change of pass shape costs (llama.cpp's graphs), starting to speculate is charged for it and short proposals are padded", () => {
  // Passes of any size up to 8 cost about one pass; a change of size costs half a pass.
  const c = (n: number) => 1 + 0.02 * (n - 1);
  const shaped = (switchMs: number): PassCostTable => ({ ...table(c), switchMs: { "0": switchMs } });
  // Acceptance 0.3 then fading: worth speculating with free shape changes, not when entering costs 2 × 0.5.
  const acceptance = fixedAcceptance(0.3, 0.3);
  assert.ok(new CostModelPlanner(table(c), acceptance).plan(LIMITS).maxNodes > 0);
  const planner = new CostModelPlanner(shaped(0.5), acceptance);
  assert.equal(planner.plan(LIMITS).maxNodes, 0);
  // Already speculating at 1 + 2 tokens, staying there costs no change of shape: it keeps speculating.
  planner.observe({ plan: { maxDepth: 2, maxNodes: 2 }, nodes: 2, path: [], draftMs: 0, passMs: c(3), passTokens: 3 });
  assert.ok(planner.plan(LIMITS).maxNodes > 0);
  // A shorter proposal is padded to the planned pass (0.02 ms of filler against two changes of shape) ...
  assert.equal(planner.padTo({ maxDepth: 2, maxNodes: 2 }, 0), 3);
  assert.equal(planner.padTo({ maxDepth: 2, maxNodes: 2 }, 2), undefined);
  // ... but not where filler costs more than the changes it saves, nor where shapes cost nothing.
  assert.equal(new CostModelPlanner({ ...table((n) => n), switchMs: { "0": 0.1 } }, acceptance).padTo({ maxDepth: 4, maxNodes: 4 }, 1), undefined);
  assert.equal(new CostModelPlanner(table(c), acceptance).padTo({ maxDepth: 2, maxNodes: 2 }, 0), undefined);
});

test("a change of shape observed costs more than the table's figure: the planner learns it", () => {
  const c = (n: number) => 1 + 0.02 * (n - 1);
  const planner = new CostModelPlanner({ ...table(c), switchMs: { "0": 0 } }, fixedAcceptance(0.3, 0.3));
  assert.ok(planner.plan(LIMITS).maxNodes > 0);
  // Alternating plain and 2-guess passes, each change of size costing 0.6 ms more than a repeated pass.
  for (let i = 0; i < 60; i++) {
    const nodes = i % 2 === 0 ? 0 : 2;
    planner.observe({ plan: { maxDepth: nodes, maxNodes: nodes }, nodes, path: [], draftMs: 0, passMs: c(1 + nodes) + 0.6, passTokens: 1 + nodes });
  }
  assert.ok(Math.abs(planner.state().switchMs - 0.6) < 0.05, String(planner.state().switchMs));
  planner.observe({ plan: { maxDepth: 0, maxNodes: 0 }, nodes: 0, path: [], draftMs: 0, passMs: c(1), passTokens: 1 });
  planner.observe({ plan: { maxDepth: 0, maxNodes: 0 }, nodes: 0, path: [], draftMs: 0, passMs: c(1), passTokens: 1 });
  assert.equal(planner.plan(LIMITS).maxNodes, 0);
});

test("after a burst of slow speculative passes it declines, and its probes at the table's speed bring it back to speculating", () => {
  // A 2-token pass cheaper than a 1-token one (llama.cpp on 2 threads, the 100M twin): padding an
  // empty proposal to 2 tokens pays even with nothing accepted.
  const c = (n: number) => (n === 1 ? 1 : 0.8 + 0.1 * (n - 2));
  const planner = new CostModelPlanner({ ...table(c), switchMs: { "0": 0 } }, fixedAcceptance(0, 0.5));
  assert.equal(planner.plan(LIMITS).maxNodes, 1);
  for (let i = 0; i < 20; i++) planner.observe({ plan: { maxDepth: 1, maxNodes: 1 }, nodes: 0, path: [], draftMs: 0, passMs: 3 * c(2), passTokens: 2 }); // the burst
  assert.equal(planner.plan(LIMITS).maxNodes, 0);
  // Declining: plain passes and now and then a probe, all at the table's speed again.
  let steps = 0, probes = 0;
  for (; steps < 500 && planner.rates(LIMITS).best === 0; steps++) {
    const plan = planner.plan(LIMITS);
    if (plan.maxNodes > 0) probes++;
    const n = plan.maxNodes > 0 ? 1 : 0;
    planner.observe({ plan, nodes: 0, path: [], draftMs: 0, passMs: c(1 + n), passTokens: 1 + n });
  }
  assert.ok(steps < 300 && probes >= 1, `speculating again after ${steps} steps, ${probes} probes`);
});

test("a fixed planner gives the budget asked for, capped by the step's limits", () => {
  const p = new FixedPlanner(4, 24);
  assert.deepEqual(p.plan(LIMITS), { maxDepth: 4, maxNodes: 16 });
  assert.deepEqual(p.plan({ maxDepth: 2, maxNodes: 1 }), { maxDepth: 2, maxNodes: 2 });
  assert.deepEqual(new FixedPlanner(0, 24).plan(LIMITS), { maxDepth: 0, maxNodes: 0 });
});

test("a generation's first speculative pass, slower than later ones, is part of its price: short generations then do not start", () => {
  const c = (n: number) => 1 + 0.08 * (n - 1);
  const limits = { maxDepth: 200, maxNodes: 16 };
  const run = (firstPassExtra: number) => {
    const planner = new CostModelPlanner(table(c), fixedAcceptance(0.7, 0.8));
    const { rates, best } = planner.rates(limits);
    const saving = 1 / rates[0] - 1 / rates[best];
    for (let g = 0; g < 4; g++) {
      planner.begin();
      let first = true;
      for (let made = 0; made < 10; made++) {
        const plan = planner.plan(limits);
        const extra = plan.maxNodes > 0 && first ? firstPassExtra * saving : 0;
        planner.observe({ plan, nodes: plan.maxNodes, path: [], draftMs: 0, passMs: c(1 + plan.maxNodes) + extra });
        if (plan.maxNodes > 0) first = false;
      }
    }
    planner.begin();
    return { catchUp: planner.state().catchUpMs / saving, starts: planner.plan(limits).maxNodes > 0 };
  };
  // A first pass costing what 20 tokens of speculation save: learned, and 10-token generations no longer start.
  const slow = run(20);
  assert.ok(slow.catchUp > 10, `catch-up ${slow.catchUp} tokens' saving`);
  assert.equal(slow.starts, false);
  // A first pass like the others: nothing to pay, it starts.
  const even = run(0);
  assert.equal(even.catchUp, 0);
  assert.equal(even.starts, true);
});

test("a generation's first proposal pays for the drafter catching up with the prompt: after short generations it does not start, after long ones it does", () => {
  const c = (n: number) => 1 + 0.08 * (n - 1);
  const planner = new CostModelPlanner(table(c), fixedAcceptance(0.7, 0.8));
  const limits = { maxDepth: 200, maxNodes: 16 };
  const { rates, best } = planner.rates(limits);
  assert.ok(best > 0);
  const saving = 1 / rates[0] - 1 / rates[best]; // ms per token
  const catchUp = 20 * saving; // the first proposal costs what 20 tokens of speculation save
  const generation = (tokens: number): number => {
    planner.begin();
    let first = true, speculated = 0;
    for (let made = 0; made < tokens; made++) {
      const plan = planner.plan(limits);
      if (plan.maxNodes > 0) speculated++;
      planner.observe({ plan, nodes: plan.maxNodes, path: [], draftMs: plan.maxNodes > 0 && first ? catchUp : 0, passMs: c(1 + plan.maxNodes) });
      if (plan.maxNodes > 0) first = false;
    }
    return speculated;
  };
  // The first generation cannot know the price: it speculates from its first step and learns it.
  assert.equal(generation(10), 10);
  assert.equal(planner.state().catchUpMs, catchUp);
  // After 10-token generations, 10 tokens save half the price: it does not start (until a probe).
  planner.begin();
  assert.equal(planner.plan(limits).maxNodes, 0);
  const speculated = generation(100);
  // A generation that runs on is taken to run as long again: it starts once 20 tokens are made.
  assert.ok(speculated >= 75 && speculated <= 85, `speculated ${speculated} of 100`);
  // The running mean length (0.7 * 10 + 0.3 * 100 = 37 tokens) now earns the price back: it starts at once.
  planner.begin();
  assert.equal(planner.plan(limits).maxNodes, best);
  // ... but not where the tokens still wanted are too few.
  assert.equal(planner.plan({ maxDepth: 9, maxNodes: 16 }).maxNodes, 0);
});
