// Target "cli": `node bin/specdec.js` with malformed options, spawned per case (a CLI run is a
// process). Each case takes `generate` (mostly) or another command with one to four fuzzed
// options: bad numbers, empty, huge, multi-line and escape-laden strings, and hostile files —
// a FIFO, a directory, devices, missing and over-long paths, a path with a newline, a symlink
// loop, text, truncated or mutated models. Generation is kept short (--max-tokens 4 unless the
// fuzzed value is invalid). The verdict:
//   exit 0                                   -> clean parse (the command ran)
//   exit 1, exactly one stderr line "specdec: error: ...", fit for a terminal -> clean error
//   anything else (internal error, stack trace, several lines, other exit codes, a signal) -> crash
//   past the time limit -> hang; over the memory limit -> memory (the child is watched like a worker)

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { unfitMessage, type CaseVerdict } from "../outcome.js";
import { CaseRng } from "../random.js";
import { rssMiB } from "../rss.js";
import { defaultModels, PROJECT_ROOT, sharedDir } from "../specdec.js";
import { caseId, type FuzzTarget } from "./target.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const TIME_LIMIT_MS = 60_000;
/** Memory limit of one CLI process (the tiny default models need far less). */
export const CLI_MEMORY_LIMIT_MIB = 2048;

const INTEGERS = ["", " ", "abc", "-1", "0", "1.5", "1e9", "1e309", "NaN", "Infinity", "-Infinity", "0x10", "9007199254740993", "-0", "+3", "٣", "1_000", "2147483648", "4294967296", "-2147483649", "3 ", "\t7", "1e-7"];
const REALS = ["", "NaN", "Infinity", "-Infinity", "1e-400", "-0", "abc", "0x1p3", "1,5", "101", "-1", "1e309", "0.5.5", "5e-324"];
const STRINGS = ["", " ", "\n", "a\nb", "\r", "\u001b[31mred\u001b[0m", "x".repeat(20_000), "--", "-", "--prompt", "\ufeff", "\ufeffOnce", "é", "\ud800", "[[0],[0]]", "[[0]", ";;", "0;1;", "0;;1", "5,3,5", "0,0,0", "99,99,99", "1,2", "a,b,c", "-1,3,5", "1,2,3,4", "0;0,0;0,0,0", "300", "[[1000000]]", "{}", "null"];
const CHOICES: Record<string, readonly string[]> = {
  "--backend": ["builtin", "llama.cpp", "", "LLAMA.CPP", "builtin ", "gpu"],
  "--method": ["none", "blind", "prompt-lookup", "draft", "medusa", "lookahead", "", "telepathy", "None"],
  "--acceptance": ["greedy", "sample", "typical", "", "lossy"],
};

type Kind = "int" | "real" | "string" | "file" | "choice" | "flag";

// generate's options and the kind of value each takes; valid values a run may take without
// becoming long (small token counts and contexts).
const GENERATE: Record<string, { kind: Kind; valid?: readonly string[] }> = {
  "--model": { kind: "file" },
  "--backend": { kind: "choice" },
  "--draft-model": { kind: "file" },
  "--method": { kind: "choice" },
  "--prompt": { kind: "string", valid: ["Once upon a time", "a", "😀"] },
  "--prompt-file": { kind: "file" },
  "--max-tokens": { kind: "int", valid: ["1", "4"] },
  "--temperature": { kind: "real", valid: ["0", "0.7", "100"] },
  "--top-k": { kind: "int", valid: ["0", "1", "40"] },
  "--top-p": { kind: "real", valid: ["1", "0.5", "1e-9"] },
  "--min-p": { kind: "real", valid: ["0", "0.5", "0.999999"] },
  "--seed": { kind: "int", valid: ["0", "4294967295"] },
  "--draft-max": { kind: "int", valid: ["0", "1", "8", "256"] },
  "--ngram-max": { kind: "int", valid: ["1", "3", "64"] },
  "--ngram-min": { kind: "int", valid: ["1", "2", "64"] },
  "--medusa": { kind: "file" },
  "--tree": { kind: "string" },
  "--acceptance": { kind: "choice" },
  "--lookahead": { kind: "string" },
  "--candidates": { kind: "int", valid: ["1", "2", "64"] },
  "--tree-nodes": { kind: "int", valid: ["1", "24", "1024"] },
  "--context-size": { kind: "int", valid: ["16", "64"] },
  "--threads": { kind: "int", valid: ["1", "2"] },
  "--stop": { kind: "string", valid: [".", "Lily", "\n"] },
  "--json": { kind: "flag" },
};

/** Hostile files, made once per process in the scratch folder; name -> path. */
function hostileFiles(scratch: string): Record<string, string> {
  const dir = join(scratch, "cli-files");
  const d = defaultModels();
  const files: Record<string, string> = {
    missing: join(dir, "missing.gguf"),
    directory: dir,
    "dev-null": "/dev/null",
    "dev-zero": "/dev/zero",
    fifo: join(dir, "fifo.gguf"),
    empty: join(dir, "empty.gguf"),
    text: join(dir, "text.gguf"),
    "long path": join(dir, "x".repeat(5000)),
    "newline in name": join(dir, "bad\nname.gguf"),
    "symlink loop": join(dir, "loop.gguf"),
    truncated: join(dir, "truncated.gguf"),
    "key length 0x40": join(dir, "key-length.gguf"),
    "vocabulary only": join(sharedDir(), "tokenizers", "gguf-vocab", "ggml-vocab-gpt-2.gguf"),
    "medusa heads": d.medusa,
    "other vocabulary": join(sharedDir(), "models", "llama-2-tiny-random.gguf"),
    "default target": d.target,
    "default draft": d.draft,
  };
  if (!existsSync(join(dir, "done"))) {
    mkdirSync(dir, { recursive: true });
    if (!existsSync(files.fifo)) execFileSync("mkfifo", [files.fifo]);
    writeFileSync(files.empty, "");
    writeFileSync(files.text, "Once upon a time there was a text file.\n");
    writeFileSync(files["newline in name"], "not a model\n");
    if (!existsSync(files["symlink loop"])) symlinkSync(files["symlink loop"], files["symlink loop"]);
    const target = readFileSync(d.target);
    writeFileSync(files.truncated, target.subarray(0, 100_000));
    // The message-size case: byte 2 of the first key's u64 length set to 0x40.
    const mutant = Buffer.from(target);
    mutant[24 + 2] = 0x40;
    writeFileSync(files["key length 0x40"], mutant);
    writeFileSync(join(dir, "done"), "");
  }
  return files;
}

interface CliParams {
  argv: string[];
  /** Hostile file names used; their paths are resolved in the worker's scratch folder. */
  files: string[];
}

const FILE_NAMES = ["missing", "directory", "dev-null", "dev-zero", "fifo", "empty", "text", "long path", "newline in name", "symlink loop", "truncated", "key length 0x40", "vocabulary only", "medusa heads", "other vocabulary", "default target", "default draft"];
// argv placeholder for a hostile file ("\0<name>\0"), replaced by its path at run time.
const fileToken = (name: string) => `\u0000${name}\u0000`;
const FILE_TOKENS = /\u0000([^\u0000]+)\u0000/g;

// Text inputs are read as streams, so a FIFO waits for its writer (as `cat` does): not for them.
const TEXT_INPUTS = new Set(["--prompt-file", "--data", "--val"]);

function value(rng: CaseRng, option: string, kind: Kind, valid: readonly string[] | undefined, files: string[]): string | undefined {
  if (kind === "flag") return undefined;
  if (kind === "file") {
    const name = rng.pick(TEXT_INPUTS.has(option) ? FILE_NAMES.filter((f) => f !== "fifo") : FILE_NAMES);
    files.push(name);
    return fileToken(name);
  }
  if (valid && rng.chance(0.35)) return rng.pick(valid);
  if (kind === "choice") return rng.pick(CHOICES[option]);
  return rng.pick(kind === "int" ? INTEGERS : kind === "real" ? REALS : STRINGS);
}

function generateArgv(rng: CaseRng, files: string[]): string[] {
  const argv = ["generate", "--max-tokens", "4"];
  const options = Object.keys(GENERATE);
  const n = rng.weighted([[1, 4], [2, 3], [3, 2], [4, 1]]);
  const chosen: string[] = [];
  for (let i = 0; i < n; i++) {
    const o = rng.pick(options);
    chosen.push(o);
    const spec = GENERATE[o];
    const v = value(rng, o, spec.kind, spec.valid, files);
    if (v === undefined) argv.push(o);
    else if (rng.chance(0.1)) argv.push(`${o}=${v}`);
    else argv.push(o, v);
  }
  if (!chosen.includes("--prompt") && !chosen.includes("--prompt-file") && rng.chance(0.8)) argv.push("--prompt", "Once upon a time");
  if (rng.chance(0.05)) argv.push(rng.pick(["--frobnicate", "-x", "--", "---", "extra", "--model="]));
  return argv;
}

// Other commands, each with at least one invalid value so nothing long runs.
function otherArgv(rng: CaseRng, files: string[]): string[] {
  const bad = () => rng.pick(INTEGERS.filter((v) => !/^\s*\+?\d+\s*$/.test(v) || v === "0"));
  return rng.pick<() => string[]>([
    () => [],
    () => ["summon"],
    () => ["--version"],
    () => ["help", rng.pick(["generate", "nope", ""])],
    () => ["demo", rng.pick(["--max-tokens", "--repeats", "--threads"]), bad()],
    () => ["demo", "--backend", rng.pick(CHOICES["--backend"].slice(2))],
    () => ["train"],
    () => ["train", "medusa", "--model", value(rng, "--model", "file", undefined, files)!, "--data", value(rng, "--data", "file", undefined, files)!, "--out", fileToken("directory"), "--heads", bad()],
    () => ["train", "draft", "--model", value(rng, "--model", "file", undefined, files)!, "--data", value(rng, "--data", "file", undefined, files)!, "--out", fileToken("directory"), "--windows", bad()],
    () => ["train", "model", "--data", value(rng, "--data", "file", undefined, files)!, "--out", fileToken("directory"), "--vocab", rng.pick(["1", "256", ...INTEGERS.slice(0, 6)])],
  ])();
}

/** Run `argv` as a specdec process; the verdict, judged as described at the top of this file. */
async function runCli(argv: string[]): Promise<CaseVerdict> {
  const child = spawn(process.execPath, [BIN, ...argv], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SPECDEC_DEBUG: "" } });
  let stdout = 0;
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.length));
  child.stderr.on("data", (b: Buffer) => {
    if (stderr.length < 1 << 20) stderr += b.toString("utf8");
  });
  let killedFor: "hang" | "memory" | undefined;
  let peak = 0;
  const watch = setInterval(() => {
    const rss = child.pid ? rssMiB(child.pid) : 0;
    peak = Math.max(peak, rss);
    if (rss > CLI_MEMORY_LIMIT_MIB) {
      killedFor = "memory";
      child.kill("SIGKILL");
    }
  }, 50);
  const timer = setTimeout(() => {
    killedFor = "hang";
    child.kill("SIGKILL");
  }, TIME_LIMIT_MS - 5_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on("close", (c, s) => resolve([c, s])));
  clearInterval(watch);
  clearTimeout(timer);
  if (killedFor === "hang") return { outcome: "hang", detail: `specdec ran past ${(TIME_LIMIT_MS - 5_000) / 1000} s` };
  if (killedFor === "memory") return { outcome: "memory", detail: `specdec took ${peak} MiB` };
  if (signal) return { outcome: "crash", detail: `specdec killed by ${signal}: ${JSON.stringify(stderr.slice(-200))}` };
  if (code === 0) return { outcome: "parsed", detail: `ran (${stdout} bytes of output)` };
  const lines = stderr.replace(/\n$/, "").split("\n");
  const first = JSON.stringify(lines[0].slice(0, 200));
  if (code !== 1) return { outcome: "crash", detail: `exit code ${code}: ${first}` };
  if (lines.length !== 1) return { outcome: "crash", detail: `refusal of ${lines.length} lines (${stderr.length} characters on stderr): ${first}` };
  if (!lines[0].startsWith("specdec: error: ")) return { outcome: "crash", detail: `refusal not a specdec error: ${first}` };
  const unfit = unfitMessage(lines[0].slice("specdec: error: ".length));
  if (unfit) return { outcome: "crash", detail: `unfit refusal (${unfit}): ${first}` };
  return { outcome: "error", detail: lines[0].slice("specdec: error: ".length) };
}

export const cliTarget: FuzzTarget = {
  name: "cli",
  timeLimitMs: TIME_LIMIT_MS,
  build(seed, index) {
    const rng = new CaseRng(seed, "cli", index);
    const files: string[] = [];
    const argv = rng.chance(0.9) ? generateArgv(rng, files) : otherArgv(rng, files);
    const shown = argv.map((a) => JSON.stringify(a.length > 40 ? a.slice(0, 40) + "…" : a).replace(/\\u0000([^\\]+)\\u0000/g, "<$1>"));
    const params: CliParams = { argv, files };
    return { id: caseId("cli", index), target: "cli", what: [`specdec ${shown.join(" ")}`], params: { ...params } };
  },
  async run(c, _file, scratch) {
    const hostile = hostileFiles(scratch);
    const argv = (c.params as unknown as CliParams).argv.map((a) => a.replace(FILE_TOKENS, (_, name: string) => hostile[name]));
    return runCli(argv);
  },
};
