// `specdec demo` and the default model family, on a tiny family trained here in seconds and
// pointed to with SPECDEC_MODELS (the real models/ files are tested elsewhere).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_MODEL_FILES } from "../src/defaultModels.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const family = mkdtempSync(join(tmpdir(), "specdec-family-"));
const MISSING = join(family, "no-such-folder");

function specdec(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A bad input: exit code 1, one line on stderr matching `pattern`, no stack trace. */
function assertCleanError(r: ReturnType<typeof specdec>, pattern: RegExp) {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one-line error expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^specdec: error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

before(() => {
  // A few KB of TinyStories, cut at a paragraph; sizes chosen so all four trainings take seconds.
  const text = readFileSync(sharedFile("corpora", "tinystories", "tinystories_train_head_smallGPT.txt"), "utf8");
  const corpus = join(family, "corpus.txt");
  writeFileSync(corpus, text.slice(0, text.indexOf("\n", 8000)));
  const f = (role: keyof typeof DEFAULT_MODEL_FILES) => join(family, DEFAULT_MODEL_FILES[role]);
  const steps: string[][] = [
    ["train", "model", "--data", corpus, "--out", f("target"), "--vocab", "300", "--dim", "32", "--layers", "1", "--hidden", "64", "--context", "320", "--steps", "30", "--batch", "4"],
    ["train", "draft", "--model", f("target"), "--data", corpus, "--out", f("draft"), "--dim", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--hidden", "32", "--context", "64", "--steps", "20", "--batch", "2", "--windows", "16"],
    ["train", "medusa", "--model", f("target"), "--data", corpus, "--out", f("medusa"), "--heads", "2", "--steps", "20", "--examples", "200", "--val-examples", "50", "--continuation", "16"],
    ["train", "eagle", "--model", f("target"), "--data", corpus, "--out", f("eagle"), "--steps", "12", "--batch", "4", "--sequences", "16", "--val-sequences", "4", "--continuation", "16", "--unroll", "2"],
  ];
  for (const args of steps) {
    const r = specdec({}, ...args, "--quiet");
    assert.equal(r.code, 0, `${args.slice(0, 2).join(" ")} failed:\n${r.stderr}`);
  }
});

after(() => rmSync(family, { recursive: true, force: true }));

test("specdec demo: every method, against plain decoding, with the same tokens", () => {
  const r = specdec({ SPECDEC_MODELS: family }, "demo", "--repeats", "1", "--max-tokens", "48", "--no-twin");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes(family), "names the family's folder");
  const sections = r.stdout.split(/^## /m).slice(1);
  assert.equal(sections.length, 2, r.stdout);
  const expected = [["none", "prompt-lookup", "suffix"], ["none", "draft", "medusa", "eagle", "prompt-lookup"]];
  for (const [i, section] of sections.entries()) {
    const rows = section.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| method"));
    assert.deepEqual(rows.map((l) => l.split(" ")[1]), expected[i], section);
    for (const row of rows) {
      const cells = row.split("|").map((c) => c.trim());
      assert.equal(cells[6], "yes", row);
      assert.match(cells[4], /^\d+\.\d\dx$/, row);
      assert.match(cells[5], /^\d+\.\d\d$/, row); // mean budget
    }
    assert.match(section, /plain decoding's continuation/);
  }
  assert.match(r.stdout, /Every method wrote exactly the tokens of plain decoding/);
});

test("specdec demo --json: one object with a row per method", () => {
  const r = specdec({ SPECDEC_MODELS: family, SPECDEC_CACHE: join(family, "cache") }, "demo", "--json", "--repeats", "1", "--max-tokens", "24", "--twin-params", "2M");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split("\n").length, 1);
  type Demos = { name: string; plainText: string; rows: { method: string; tau: number; speedup: number; sameAsPlain: boolean }[] }[];
  const out = JSON.parse(r.stdout) as { demos: Demos; twin: { path: string; demos: Demos } };
  assert.deepEqual(out.demos.map((d) => [d.name, d.rows.map((x) => x.method)]), [["reuse", ["none", "prompt-lookup", "suffix"]], ["free", ["none", "draft", "medusa", "eagle", "prompt-lookup"]]]);
  // The same on the target's heavy twin, made on first use in the cache: the same text, the same tokens.
  assert.ok(out.twin.path.startsWith(join(family, "cache", "twins")), out.twin.path);
  assert.deepEqual(out.twin.demos.map((d) => d.plainText), out.demos.map((d) => d.plainText));
  for (const d of [...out.demos, ...out.twin.demos]) {
    assert.equal(typeof d.plainText, "string");
    assert.equal(d.rows[0].tau, 1, "plain decoding: one token decided per pass");
    assert.equal(d.rows[0].speedup, 1);
    for (const x of d.rows) assert.equal(x.sameAsPlain, true, `${d.name} ${x.method}`);
  }
});

test("generate without --model uses the default family: target, draft, Medusa heads", () => {
  const env = { SPECDEC_MODELS: family };
  const run = (...args: string[]) => {
    const r = specdec(env, "generate", "--backend", "builtin", "--prompt", "Once upon a time", "--max-tokens", "16", "--json", ...args);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { method: string; tokens: number[] };
  };
  const plain = run("--method", "none");
  assert.equal(plain.tokens.length > 0, true);
  for (const method of ["draft", "medusa", "eagle"]) assert.deepEqual(run("--method", method).tokens, plain.tokens, method);
  // A tree method without --backend runs on the built-in engine (the one with tree attention).
  const auto = specdec(env, "generate", "--method", "medusa", "--prompt", "Once upon a time", "--max-tokens", "16", "--json");
  assert.equal(auto.code, 0, auto.stderr);
  assert.deepEqual((JSON.parse(auto.stdout) as { tokens: number[] }).tokens, plain.tokens);
});

test("bad input: a missing default model gives one line naming it, exit 1", () => {
  const env = { SPECDEC_MODELS: MISSING };
  const r = specdec(env, "generate", "--prompt", "Once upon a time");
  assertCleanError(r, /default model not found at .*: the models\/ folder ships with the repository; pass --model FILE$/);
  assert.ok(r.stderr.includes(join(MISSING, DEFAULT_MODEL_FILES.target)), r.stderr);
  assert.equal(r.stdout, "");
  assertCleanError(specdec(env, "demo"), /default model not found at .*SPECDEC_MODELS/);
});

test("bad input: the family's helpers are defaults only for the family's target", () => {
  // A user's own target keeps the old errors: the family's draft and heads would not fit it.
  const target = join(family, DEFAULT_MODEL_FILES.target);
  assertCleanError(specdec({ SPECDEC_MODELS: family }, "generate", "--model", target, "--method", "draft", "--prompt", "hi"), /needs a helper model/);
  assertCleanError(specdec({ SPECDEC_MODELS: family }, "generate", "--model", target, "--backend", "builtin", "--method", "medusa", "--prompt", "hi"), /needs its heads/);
  // Medusa runs on either backend: without the family, both look for the default model first.
  assertCleanError(specdec({ SPECDEC_MODELS: MISSING }, "generate", "--backend", "llama.cpp", "--method", "medusa", "--prompt", "hi"), /default model not found/);
  assertCleanError(specdec({ SPECDEC_MODELS: MISSING }, "generate", "--method", "medusa", "--prompt", "hi"), /default model not found/);
});
