// specdec bench: one JSON object with the documented schema, prompts in both formats, and a
// divergent method caught loudly.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePrompts } from "../src/bench/promptsFile.js";
import { passCostOverPlain, requireIdentical, runBench } from "../src/bench/runBench.js";
import { nativeTokensPerSecond } from "../src/bench/peers/runPeers.js";
import type { PassCostTable } from "../src/planner/passCost.js";
import { openPassCost, openTarget } from "../src/session.js";
import type { Verifier } from "../src/verifiers/verifier.js";
import type { Token } from "../src/types.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const tmp = mkdtempSync(join(tmpdir(), "specdec-bench-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, SPECDEC_CACHE: join(tmp, "cache") };
const acceptAll: Verifier = {
  name: "accept-all",
  reads: "argmax",
  lossy: true,
  verify: (tree, out) => ({ path: tree.tokens.map((_, i) => i), token: out.argmax[tree.tokens.length] as Token, kind: "bonus" }),
};
const STORY = "Tom had a red ball. He liked to throw it to his dog, Max. Max ran fast and brought the ball back. Tom was happy.";

test("prompts files: {prompt} and Spec-Bench {turns} lines, categories, one-line errors", () => {
  const ps = parsePrompts([JSON.stringify({ prompt: "a", category: "x" }), "", JSON.stringify({ turns: ["b", "second turn"], question_id: 3 }), JSON.stringify({ prompt: "c" })].join("\n"));
  assert.deepEqual(ps, [{ text: "a", category: "x" }, { text: "b", category: "all" }, { text: "c", category: "all" }]);
  assert.throws(() => parsePrompts("{\"prompt\": 3}", "f.jsonl"), /f\.jsonl:1: needs a non-empty "prompt"/);
  assert.throws(() => parsePrompts("not json", "f.jsonl"), /f\.jsonl:1: not a JSON object/);
  assert.throws(() => parsePrompts("\n\n", "f.jsonl"), /no prompts/);
  // The shared Spec-Bench file parses whole.
  const spec = parsePrompts(readFileSync(sharedFile("bench", "spec_bench", "question.jsonl"), "utf8"));
  assert.equal(spec.length, 480);
  assert.equal(new Set(spec.map((p) => p.category)).size >= 6, true);
});

test("bench --json prints exactly one object with the documented schema; --svg writes a chart", () => {
  const prompts = join(tmp, "prompts.jsonl");
  writeFileSync(prompts, [JSON.stringify({ prompt: `${STORY}\n\nTom had a red ball.`, category: "retell" }), JSON.stringify({ turns: ["Once upon a time"], category: "continue" })].join("\n") + "\n");
  const svg = join(tmp, "chart.svg");
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "bench", "--model", MODEL, "--backend", "builtin", "--prompts", prompts, "--methods", "none,prompt-lookup", "--max-tokens", "24", "--json", "--svg", svg, "--peers", "none"], { encoding: "utf8", env, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.equal(j.model, MODEL);
  assert.equal(j.backend, "builtin");
  assert.ok("threads" in j);
  for (const n of ["1", "2", "4", "8", "16"]) assert.ok(j.passCost[n] > 0, `passCost[${n}]`);
  assert.deepEqual(j.results.map((x: { method: string; category: string }) => `${x.method}/${x.category}`), ["none/retell", "none/continue", "prompt-lookup/retell", "prompt-lookup/continue"]);
  for (const x of j.results) {
    for (const k of ["tau", "tokensPerSecond", "speedup", "meanDraft"]) assert.equal(typeof x[k], "number", k);
    assert.equal(x.identical, true);
    assert.ok(Array.isArray(x.acceptanceByPosition));
  }
  assert.equal(j.results[0].speedup, 1);
  assert.ok(existsSync(svg) && readFileSync(svg, "utf8").startsWith("<svg"), "chart written");
});

test("bench --control runs plain decoding again as a method: the run's noise floor, never the reference", () => {
  const prompts = join(tmp, "control.jsonl");
  writeFileSync(prompts, [JSON.stringify({ prompt: "Once upon a time" }), JSON.stringify({ prompt: STORY })].join("\n") + "\n");
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "bench", "--model", MODEL, "--backend", "builtin", "--prompts", prompts, "--methods", "none,prompt-lookup", "--control", "--max-tokens", "16", "--repeats", "2", "--json", "--peers", "none"], { encoding: "utf8", env, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.results.map((x: { method: string }) => x.method), ["none", "control", "prompt-lookup"]);
  const [none, control] = j.results;
  assert.equal(none.speedup, 1);
  assert.equal(control.identical, true);
  assert.ok(control.speedup > 0 && Math.abs(control.speedup - control.tokensPerSecond / none.tokensPerSecond) < 1e-9);
});

test("a native peer's tokens/s counts the output as specdec does: its reported time over specdec's plain output's tokens", () => {
  // llama-speculative-simple reported 13 tokens at 325 t/s for an answer of 12 tokens (the
  // end-of-generation token counted) and 45 at 300 for one of 43 (and a token after it).
  const runs = [{ tokens: 13, tokensPerSecond: 325 }, undefined, { tokens: 45, tokensPerSecond: 300 }];
  const seconds = 13 / 325 + 45 / 300;
  assert.ok(Math.abs(nativeTokensPerSecond(runs, [12, 30, 43]) - 55 / seconds) < 1e-9);
  // Without specdec's counts: the program's own.
  assert.ok(Math.abs(nativeTokensPerSecond(runs) - 58 / seconds) < 1e-9);
  assert.equal(nativeTokensPerSecond([undefined]), 0);
});

test("a method whose output diverges from plain decoding is caught loudly", async () => {
  const opened = await openTarget({ model: MODEL, backend: "builtin" });
  try {
    const passCost = await openPassCost(opened);
    // A lossy verifier (it keeps every guess) with blind guesses must change the output.
    const results = await runBench(opened, {
      prompts: [{ text: `${STORY}\n\nTom had a red ball.`, category: "all" }, { text: "Once upon a time", category: "all" }],
      methods: [{ label: "blind (accept-all, lossy)", method: "blind", planner: { draftMax: 4 }, verifier: acceptAll }],
      maxTokens: 64,
      passCost,
    });
    assert.equal(results.find((x) => x.method !== "none")!.identical, false);
    assert.throws(() => requireIdentical(results), /output differs from plain decoding: blind \(accept-all, lossy\) \(all\)/);
  } finally {
    await opened.target.dispose();
  }
});

test("the bound's pass cost: plain table c(n) / c(1); a hidden-state table its own ratio times an overhead never below 1", () => {
  const table = (ms: number[], hidden = false): PassCostTable => ({ sizes: [1, 2, 4], ms: { "1": ms }, contextLength: 16, read: "argmax", ...(hidden ? { hidden } : {}) });
  const plain = table([12, 10, 15]);
  assert.equal(passCostOverPlain(plain, plain, 2), 10 / 12);
  // Measured in a faster moment (c(1) 6 against plain's 12): the ratio is its own, not 5 / 12.
  assert.equal(passCostOverPlain(table([6, 5, 9], true), plain, 2), 5 / 6);
  // Reading hidden states costs 20% more at one token (14.4 against 12): that overhead counts, so
  // its 2-token pass (12) costs as much as plain decoding's one-token pass.
  assert.ok(Math.abs(passCostOverPlain(table([14.4, 12, 18], true), plain, 2) - 1) < 1e-12);
});

test("bench --refresh-cost measures the pass costs with hidden states again too (for methods that read them)", () => {
  const prompts = join(tmp, "refresh.jsonl");
  writeFileSync(prompts, JSON.stringify({ prompt: "Once upon a time" }) + "\n");
  const cache = join(tmp, "refresh-cache");
  const run = (...extra: string[]) => {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "bench", "--backend", "builtin", "--prompts", prompts, "--methods", "none,medusa", "--max-tokens", "8", "--json", "--peers", "none", ...extra], { encoding: "utf8", env: { ...env, SPECDEC_CACHE: cache }, timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const dir = join(cache, "pass-cost");
    return new Map(readdirSync(dir).map((f) => [f, JSON.parse(readFileSync(join(dir, f), "utf8")) as { hidden?: boolean; ms: unknown }]));
  };
  const first = run();
  assert.equal(first.size, 2, "a plain table and one with hidden states");
  const again = run();
  for (const [f, t] of first) assert.deepEqual(again.get(f), t, `${f}: read from the cache`);
  const refreshed = run("--refresh-cost");
  for (const [f, t] of first) assert.notDeepEqual(refreshed.get(f)!.ms, t.ms, `${f} (hidden ${t.hidden === true}): measured again`);
});
