// measurePassCost gives what a loop of passes of each size pays, on a simulated clock: a target
// whose 2-token pass is cheaper than its 1-token pass (llama.cpp on 2 threads does that on the
// 100M twin) keeps that order; a change of shape, the slow passes right after a long one and a
// rare stall do not end up in the figures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { measurePassCost, passCostKey } from "../src/planner/passCost.js";
import { sharedFile } from "./support/sharedData.js";
import type { PassRequest, PassResult, Target } from "../src/targets/target.js";
import type { Token } from "../src/types.js";
import { MarkovTarget, randomTransitions } from "./support/markovModel.js";
import { SeededRng } from "../src/sampling/rng.js";

/** ms of a settled pass of n tokens: 1 token 0.6, 2 tokens 0.4, then 0.2 per token. */
const settled = (n: number) => (n === 1 ? 0.6 : n === 2 ? 0.4 : 0.2 * n);

class ClockedTarget extends MarkovTarget {
  readonly reusesGraphs = true;
  clock = 0; // simulated ms
  private lastSize = 0;
  private slow = { until: 0, below: 0 }; // after a pass of 8 or more tokens, shorter passes cost 0.5 ms more for 2 ms
  private passCount = 0;

  override tokenize(text: string): Token[] {
    return [...text].map((c) => (c.charCodeAt(0) % this.vocabSize) as Token);
  }

  override async evaluate(tokens: readonly Token[], request: PassRequest = {}): Promise<PassResult> {
    const n = tokens.length;
    let ms = settled(n);
    if (n !== this.lastSize) ms += 0.3; // a new compute graph
    if (this.clock < this.slow.until && n < this.slow.below) ms += 0.5;
    if (++this.passCount === 300) ms += 100; // the machine stalls once
    this.clock += ms;
    if (n >= 8) this.slow = { until: this.clock + 2, below: n };
    this.lastSize = n;
    return super.evaluate(tokens, request);
  }
}

test("pass costs are what a loop of settled passes pays: a cheaper 2-token pass stays cheaper, changes, after-effects and a stall are left out", async () => {
  const target = new ClockedTarget(randomTransitions(8, new SeededRng(1)), 4096);
  const table = await measurePassCost(target, { sizes: [1, 2, 3, 4, 8, 16, 33], now: () => target.clock });
  const ms = table.ms["0"];
  const at = (n: number) => ms[table.sizes.indexOf(n)];
  for (const n of table.sizes) assert.ok(Math.abs(at(n) - settled(n)) < 1e-9, `c(${n}) = ${at(n)}, settled ${settled(n)}`);
  assert.ok(at(2) < at(1));
  // The change of shape: 0.3 ms (the median over sizes; the 1-token pass after a long one pays more).
  assert.ok(Math.abs(table.switchMs!["0"] - 0.3) < 1e-9, `switch ${table.switchMs!["0"]}`);
});

/** A machine busy with something else for a while: passes cost 3x until `busyUntil` ms of quiet work are done, whatever the thread count. */
class BusyTarget extends MarkovTarget {
  clock = 0;
  work = 0;
  constructor(private readonly busyUntil: number) {
    super(randomTransitions(8, new SeededRng(2)), 4096);
  }
  override tokenize(text: string): Token[] {
    return [...text].map((c) => (c.charCodeAt(0) % this.vocabSize) as Token);
  }
  override async evaluate(tokens: readonly Token[], request: PassRequest = {}): Promise<PassResult> {
    this.clock += settled(tokens.length) * (this.work < this.busyUntil ? 3 : 1);
    this.work += settled(tokens.length);
    return super.evaluate(tokens, request);
  }
}

test("thread counts are measured in turn, so a busy spell on the machine weighs on all of them alike", async () => {
  const options = { sizes: [1, 2, 4, 8], threads: [1, 2] };
  const quiet = new BusyTarget(0);
  await measurePassCost(quiet, { ...options, now: () => quiet.clock });
  // Busy for the first 40% of the measurement: one count after the other, the first would be
  // measured mostly busy (3x) and the second not at all.
  const target = new BusyTarget(0.4 * quiet.work);
  const table = await measurePassCost(target, { ...options, now: () => target.clock });
  for (const [i, n] of table.sizes.entries()) {
    const ratio = table.ms["2"][i] / table.ms["1"][i];
    assert.ok(Math.abs(ratio - 1) < 1e-9, `c(${n}) on 2 threads / 1 thread = ${ratio.toFixed(3)}`);
    assert.ok(Math.abs(table.ms["1"][i] - settled(n)) < 1e-9, `c(${n}) = ${table.ms["1"][i]}: the busy spell is not the median`);
  }
});

test("the pass-cost cache key changes with the target's kernels (a new kernel variant measures anew), not otherwise", () => {
  const model = sharedFile("models", "stories260K.gguf");
  const target = (kernels?: string) => ({ backend: "builtin", contextSize: 256, threadCounts: [1, 2], kernels }) as unknown as Target;
  assert.equal(passCostKey(model, target("wasm-fma")), passCostKey(model, target("wasm-fma")));
  assert.notEqual(passCostKey(model, target("wasm-fma")), passCostKey(model, target("wasm")));
  assert.notEqual(passCostKey(model, target("wasm")), passCostKey(model, target()));
});
