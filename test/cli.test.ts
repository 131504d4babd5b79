import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const MODEL = sharedFile("models", "stories260K.gguf");
const OTHER_VOCAB = sharedFile("models", "llama-2-tiny-random.gguf");
const tmp = mkdtempSync(join(tmpdir(), "specdec-cli-"));

function specdec(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A bad input: non-zero exit, exactly one line on stderr matching `pattern`, no stack trace. */
function assertCleanError(args: string[], pattern: RegExp) {
  const r = specdec(...args);
  assert.notEqual(r.code, 0, `expected failure for ${args.join(" ")}`);
  assert.equal(r.code !== null, true, "must exit, not hang");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one-line error expected, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  assert.equal(r.stdout, "");
}

const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. " +
  'She wanted to play with it, but it was too high. Lily\'s mom said, "Be careful, Lily!" Lily smiled and ran to the ball.\n\n' +
  "Once upon a time, there was a little girl named Lily.";

test("generate --json prints one JSON object; prompt lookup equals plain decoding with tau > 1.1", () => {
  // A fixed budget (the method's default draft length): the cost model's budgets follow this
  // machine's timing, and on this tiny model it rightly declines to speculate.
  const run = (method: string) => {
    const r = specdec("generate", "--model", MODEL, "--method", method, "--planner", "fixed", "--temperature", "0", "--max-tokens", "128", "--json", "--prompt", STORY);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 1);
    return JSON.parse(r.stdout) as { text: string; tokens: number[]; stats: Record<string, number> };
  };
  const none = run("none");
  const lookup = run("prompt-lookup");
  assert.equal(none.tokens.length, 128);
  assert.deepEqual(lookup.tokens, none.tokens);
  assert.equal(lookup.text, none.text);
  for (const k of ["targetCalls", "draftedTokens", "acceptedTokens", "tau", "tokensPerSecond"]) assert.equal(typeof lookup.stats[k], "number", k);
  assert.equal(none.stats.tau, 1);
  assert.ok(lookup.stats.tau > 1.1, `tau ${lookup.stats.tau}`);
});

test("without --json, text streams to stdout and a one-line summary goes to stderr", () => {
  const r = specdec("generate", "--model", MODEL, "--prompt", "Once upon a time", "--max-tokens", "40");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\w+/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.match(r.stderr, /tau=\d/);
});

test("--help documents every option", () => {
  const r = specdec("generate", "--help");
  assert.equal(r.code, 0);
  for (const o of ["--model", "--draft-model", "--method", "--prompt", "--prompt-file", "--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--draft-max", "--json"])
    assert.ok(r.stdout.includes(o), `--help lacks ${o}`);
});

test("bad input: model path that does not exist", () => {
  assertCleanError(["generate", "--model", join(tmp, "nope.gguf"), "--prompt", "hi"], /not found/);
});

test("bad input: a file that is not GGUF", () => {
  const f = join(tmp, "text.gguf");
  writeFileSync(f, "hello, I am not a model\n".repeat(10));
  assertCleanError(["generate", "--model", f, "--prompt", "hi"], /not a GGUF file/);
});

test("bad input: a truncated GGUF file", () => {
  const f = join(tmp, "truncated.gguf");
  writeFileSync(f, readFileSync(MODEL).subarray(0, 200_000));
  assertCleanError(["generate", "--model", f, "--prompt", "hi"], /truncated/);
  writeFileSync(f, readFileSync(MODEL).subarray(0, 1_000));
  assertCleanError(["generate", "--model", f, "--prompt", "hi"], /truncated/);
});

test("bad input: a draft model whose vocabulary differs", () => {
  assertCleanError(["generate", "--model", MODEL, "--draft-model", OTHER_VOCAB, "--prompt", "hi"], /vocabular/);
});

test("bad input: unknown method or option", () => {
  assertCleanError(["generate", "--model", MODEL, "--method", "telepathy", "--prompt", "hi"], /telepathy/);
  assertCleanError(["generate", "--model", MODEL, "--frobnicate", "--prompt", "hi"], /unknown option/);
  assertCleanError(["summon", "--model", MODEL], /unknown command/);
});

test("bad input: a prompt longer than the context", () => {
  const f = join(tmp, "long.txt");
  writeFileSync(f, STORY.repeat(4));
  assertCleanError(["generate", "--model", MODEL, "--context-size", "64", "--prompt-file", f], /context/);
});

test("bad input: non-numeric or out-of-range numbers", () => {
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--max-tokens", "many"], /max-tokens.*integer/);
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--top-p", "1.5"], /top-p/);
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--temperature", "-1"], /temperature/);
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--draft-max", "1e9"], /draft-max/);
});

test("bad input: no prompt, or a prompt file that does not exist", () => {
  assertCleanError(["generate", "--model", MODEL], /no prompt/);
  assertCleanError(["generate", "--model", MODEL, "--prompt-file", join(tmp, "missing.txt")], /prompt file/);
});

test("the user's files are never modified", () => {
  const f = join(tmp, "model-copy.gguf");
  copyFileSync(MODEL, f);
  const before = readFileSync(f);
  specdec("generate", "--model", f, "--prompt", "Once", "--max-tokens", "8");
  assert.ok(readFileSync(f).equals(before));
});

// ---- found by the fuzz campaign (issue 15) ----

test("bad input: a corrupted key length (one byte of stories-target.gguf set to 0x40) gives one short line, exit 1", () => {
  const f = join(tmp, "key-length.gguf");
  const b = readFileSync(join(PROJECT_ROOT, "models", "stories-target.gguf"));
  b[24 + 2] = 0x40; // byte 2 of the first key's u64 length: a 4 MB "key"
  writeFileSync(f, b);
  const r = specdec("generate", "--model", f, "--prompt", "hi");
  assert.equal(r.code, 1);
  assert.ok(r.stderr.length < 1000, `${r.stderr.length} characters on stderr`);
  assertCleanError(["generate", "--model", f, "--prompt", "hi"], /^specdec: error: .*metadata general\.architecture.*characters\)/);
});

test("bad input: a FIFO as --model is refused at once instead of blocking", () => {
  const fifo = join(tmp, "model.fifo");
  execFileSync("mkfifo", [fifo]);
  assertCleanError(["generate", "--model", fifo, "--prompt", "hi"], /is a FIFO \(named pipe\), not a GGUF file/);
});

test("bad input: --stop '' is refused (it stopped after one token)", () => {
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--stop", ""], /a stop string must not be empty/);
});

test("bad input: --prompt-file /dev/zero is refused once past the size bound, not read until memory runs out", () => {
  assertCleanError(["generate", "--model", MODEL, "--prompt-file", "/dev/zero"], /prompt file \/dev\/zero is larger than 16 MiB/);
});

test("bad input: a missing command is one line, exit 1 (not the help text on stderr)", () => {
  for (const args of [[], ["train"]]) {
    const r = specdec(...args);
    assert.equal(r.code, 1, args.join(" "));
    assert.equal(r.stderr, "specdec: error: missing command; add --help to see the commands\n");
  }
  assert.equal(specdec("--help").code, 0);
});

test("bad input: option values with newlines, escapes or thousands of characters stay one escaped, bounded line", () => {
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--top-p", "1\n2"], /argument '1\\u000a2' is invalid/);
  assertCleanError(["generate", "--model", MODEL, "--prompt", "hi", "--tree", "\u001b[31m" + "0;".repeat(5000)], /^specdec: error: .*\\u001b\[31m/);
  const r = specdec("generate", "--model", join(tmp, "x".repeat(5000)), "--prompt", "hi");
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.equal(r.stderr.length, "specdec: error: ".length + 1000 + 1, "1000 characters of message, cut");
});

test("the CLI flushes stderr before it exits: 1 MiB written just before exiting arrives whole through a pipe", () => {
  const main = pathToFileURL(join(PROJECT_ROOT, "dist", "src", "cli", "main.js")).href;
  const script = `process.stderr.write("x".repeat(1 << 20) + "\\n"); const { exitAfterFlush } = await import(${JSON.stringify(main)}); await exitAfterFlush(1);`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", maxBuffer: 1 << 24 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.length, (1 << 20) + 1);
});
