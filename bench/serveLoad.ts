// npm run bench:serve [-- --model M --backend B --draft-model D --concurrency 1,4,16 --methods prompt-lookup,draft,none --max-tokens N --repeats N]
// specdec serve under concurrent streams: time to first token and tokens/s per stream at each
// concurrency, per method, the server in a process of its own with one slot per stream
// (--parallel = concurrency). Every request streams a completion at temperature 0; each
// round sends `concurrency` requests at once, each with another prompt: a TinyStories
// validation story, a blank line and the first six words of the story again (a retelling that
// prompt lookup can copy from). The story models here end most stories early, so the prompts
// are those a plain greedy run continues for all --max-tokens tokens (chosen with method none,
// before anything is timed): every stream then has the same length. Medians over all streams
// of all rounds (each row has as many streams: more rounds at lower concurrency). "loop's own tokens/s" is the response's timings.predicted_per_second: the
// speculative loop's drafting and verifying time only, without the time other slots ran.

import { Command } from "commander";
import { availableParallelism, loadavg } from "node:os";
import { markdownTable } from "../src/compare.js";
import { startChildServer, streamRequest, type StreamedCompletion } from "../test/support/serverClient.js";
import { validationStories } from "./prompts.js";

const opts = new Command("bench-serve")
  .option("--model <file>", "target model (default: the default family's)")
  .option("--backend <name>", "llama.cpp or builtin (default: the server's default)")
  .option("--draft-model <file>", "the draft method's helper (default: the family's, with the family's target)")
  .option("--concurrency <list>", "concurrent streams per round", "1,4,16")
  .option("--methods <list>", "speculative.method of the requests", "prompt-lookup,draft,none")
  .option("--max-tokens <n>", "tokens per stream", (v) => parseInt(v, 10), 96)
  .option("--repeats <n>", "rounds at the largest concurrency; smaller ones run more rounds, for as many streams per row", (v) => parseInt(v, 10), 3)
  .option("--prompts <n>", "distinct prompts (streams cycle through them)", (v) => parseInt(v, 10), 16)
  .option("--threads <n>", "llama.cpp threads per slot", "1")
  .parse()
  .opts<{ model?: string; backend?: string; draftModel?: string; concurrency: string; methods: string; maxTokens: number; repeats: number; prompts: number; threads: string }>();

const levels = opts.concurrency.split(",").map(Number);
const methodNames = opts.methods.split(",");
const serverArgs = (parallel: number) => {
  const args = ["--parallel", String(parallel), "--queue", String(parallel), "--threads", opts.threads];
  if (opts.model) args.push("--model", opts.model);
  if (opts.backend) args.push("--backend", opts.backend);
  if (opts.draftModel) args.push("--draft-model", opts.draftModel);
  return args;
};

/** Retelling prompts (stories short enough for a 256-token context) that plain decoding continues for maxTokens tokens. */
async function choosePrompts(): Promise<string[]> {
  const server = await startChildServer(serverArgs(1));
  try {
    const chosen: string[] = [];
    for (const story of validationStories(400, 420)) {
      const prompt = `${story}\n\n${story.split(" ").slice(0, 6).join(" ")}`;
      const s = await streamRequest(server.url, "/v1/completions", { prompt, max_tokens: opts.maxTokens, temperature: 0, speculative: { method: "none" } });
      if (s.final?.timings.predicted_n === opts.maxTokens) chosen.push(prompt);
      if (chosen.length === opts.prompts) break;
    }
    if (chosen.length === 0) throw new Error(`no prompt runs for ${opts.maxTokens} tokens: try a smaller --max-tokens`);
    return chosen;
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
  }
}
const prompts = await choosePrompts();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Row {
  streams: number;
  method: string;
  ttft: number;
  perStream: number;
  aggregate: number;
  loop: number;
  tau: number;
  same: string;
}

const rows: Row[] = [];
const load = loadavg()[0];
let backend = "";
for (const streams of levels) {
  const server = await startChildServer(serverArgs(streams));
  backend = /backend (\S+),/.exec(server.stderr())?.[1] ?? "?";
  try {
    const reference = new Map<number, string>(); // prompt index → text of the first method (greedy: all must agree)
    for (const method of methodNames) {
      const request = (i: number) => ({ prompt: prompts[i % prompts.length], max_tokens: opts.maxTokens, temperature: 0, speculative: { method } });
      await streamRequest(server.url, "/v1/completions", request(0)); // warm-up: the slot's drafter, the engine's first pass
      const ttft: number[] = [], perStream: number[] = [], aggregate: number[] = [], loop: number[] = [], tau: number[] = [];
      let same = true;
      // Rounds: as many streams per row at every concurrency (repeats x the largest level).
      const rounds = opts.repeats * Math.ceil(Math.max(...levels) / streams);
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        const results: StreamedCompletion[] = await Promise.all(Array.from({ length: streams }, (_, i) => streamRequest(server.url, "/v1/completions", request(r * streams + i))));
        const wall = performance.now() - t0;
        let tokens = 0;
        results.forEach((s, i) => {
          if (!s.done || !s.final) throw new Error(`stream failed: ${JSON.stringify({ status: s.status, error: s.error })}`);
          const n = s.final.timings.predicted_n as number;
          tokens += n;
          tau.push(s.final.tau as number);
          loop.push(s.final.timings.predicted_per_second as number);
          ttft.push(s.firstTextMs!);
          perStream.push((n * 1000) / (s.totalMs - s.firstTextMs!));
          const p = (r * streams + i) % prompts.length;
          if (!reference.has(p)) reference.set(p, s.text);
          else if (reference.get(p) !== s.text) same = false;
        });
        aggregate.push((tokens * 1000) / wall);
      }
      rows.push({ streams, method, ttft: median(ttft), perStream: median(perStream), aggregate: median(aggregate), loop: median(loop), tau: median(tau), same: same ? "yes" : "NO" });
      process.stderr.write(`${streams} streams, ${method}: done\n`);
    }
  } finally {
    server.child.kill("SIGTERM");
    await server.exited;
  }
}

console.log(
  `specdec serve, model ${opts.model ?? "models/stories-target.gguf (default family)"}, backend ${backend}; --parallel = streams; ` +
    `${prompts.length} retelling prompts, ${opts.maxTokens} tokens per stream, temperature 0, ${opts.repeats * Math.max(...levels)} streams per row; ` +
    `${availableParallelism()} CPUs, load average ${load.toFixed(1)} at start; node ${process.version}\n`,
);
console.log(
  markdownTable(
    ["streams", "method", "time to first token (ms)", "tokens/s per stream", "tokens/s all streams", "loop's own tokens/s", "tau", "same text as the first method"],
    rows.map((r) => [String(r.streams), r.method, r.ttft.toFixed(1), r.perStream.toFixed(0), r.aggregate.toFixed(0), r.loop.toFixed(0), r.tau.toFixed(2), r.same]),
  ),
);
