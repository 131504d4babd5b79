// specdec serve under load and faults: 64 concurrent streams (4 slots, and queued through 1),
// each equal to its single-request output, with bounded memory; a full queue; a client that
// leaves mid-stream; a burst of malformed requests; a per-request timeout; SIGTERM mid-stream.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { malformedRequest, MALFORMED_KINDS, probeMalformed } from "../src/server/malformed.js";
import { startServer, type RunningServer } from "../src/server/server.js";
import { metricValue, postJson, startChildServer, streamRequest, type ChildServer } from "./support/serverClient.js";
import { sharedFile } from "./support/sharedData.js";

const MODEL = sharedFile("models", "stories260K.gguf");
const PROMPTS = [
  "Once upon a time",
  "The little cat",
  "Lily and Tom went to the park.",
  "One day, a bird",
  "Tim had a big red ball. He",
  "Sara loved to paint.",
  "Once upon a time, there was a little girl named Lily. She loved to play outside.\n\nOnce upon a time, there was a little girl named Lily.",
  "The sun was hot and",
];
const MAX_TOKENS = 24;
const requestOf = (i: number) => ({ prompt: PROMPTS[i % PROMPTS.length], max_tokens: MAX_TOKENS, temperature: 0 });

/** Each prompt's output when it is the only request. */
async function singleOutputs(url: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < PROMPTS.length; i++) {
    const r = await postJson(url, "/v1/completions", requestOf(i));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push(r.body.choices[0].text);
  }
  return out;
}

/** An onEvent for streamRequest, and a promise that resolves at the stream's first text. */
function firstText(): { seen: Promise<void>; onEvent: (e: Record<string, any>) => void } {
  let resolve!: () => void;
  const seen = new Promise<void>((r) => (resolve = r));
  return { seen, onEvent: (e) => void (e.choices?.[0]?.text && resolve()) };
}

async function metrics(url: string): Promise<string> {
  return (await fetch(url + "/metrics")).text();
}

let four: ChildServer;
let one: RunningServer;

before(async () => {
  four = await startChildServer(["--model", MODEL, "--backend", "builtin", "--parallel", "4", "--queue", "64"]);
  one = await startServer({ port: 0, model: MODEL, backend: "builtin", parallel: 1, queue: 64 });
});

after(async () => {
  four?.child.kill("SIGTERM");
  await four?.exited;
  await one?.close();
});

test("64 concurrent streams on 4 slots: each equals its single-request output; memory stays bounded", async () => {
  const single = await singleOutputs(four.url);
  const rss = async () => metricValue(await metrics(four.url), "process_resident_memory_bytes");
  const round = async () => {
    const streams = await Promise.all(Array.from({ length: 64 }, (_, i) => streamRequest(four.url, "/v1/completions", requestOf(i))));
    streams.forEach((s, i) => {
      assert.equal(s.status, 200);
      assert.ok(s.done, `stream ${i} ended with [DONE]`);
      assert.equal(s.final?.choices[0].finish_reason, "length");
      assert.equal(s.text, single[i % PROMPTS.length], `stream ${i}`);
    });
  };
  await round(); // the first round grows the heap to its working size
  const before = await rss();
  await round();
  await round();
  const grown = (await rss()) - before;
  // Nothing a request allocates outlives it: two more rounds of 64 must not hold on to memory.
  // A slot's engine for this model is about 1 MiB (KV cache 2 x 5 layers x 512 positions x 32
  // x 4 bytes = 640 KiB, logits and attention masks 2 x 64 x 512 x 4 = 256 KiB): one kept per
  // request would add 128 MiB. The bound leaves the heap room for its own growth.
  assert.ok(grown < 32 * 2 ** 20, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB over 128 requests`);
  const text = await metrics(four.url);
  assert.equal(metricValue(text, "specdec_slots"), 4);
  assert.equal(metricValue(text, "specdec_queue_length"), 0);
  assert.equal(metricValue(text, "specdec_slots_busy"), 0);
  assert.equal(metricValue(text, 'specdec_generations_total{method="prompt-lookup",outcome="length"}'), 3 * 64 + PROMPTS.length);
});

test("--parallel 1: 64 concurrent streams queue and all complete, each equal to its single-request output", async () => {
  const single = await singleOutputs(one.url);
  let maxQueued = 0;
  const poll = setInterval(async () => {
    const h = (await (await fetch(one.url + "/health")).json()) as { queue: number };
    maxQueued = Math.max(maxQueued, h.queue);
  }, 5);
  const streams = await Promise.all(Array.from({ length: 64 }, (_, i) => streamRequest(one.url, "/v1/completions", requestOf(i))));
  clearInterval(poll);
  streams.forEach((s, i) => {
    assert.ok(s.done);
    assert.equal(s.text, single[i % PROMPTS.length], `stream ${i}`);
  });
  assert.ok(maxQueued > 0, "requests waited in the queue");
});

test("a full queue answers 503 with Retry-After; a client that leaves mid-stream frees its slot at once and is counted", async () => {
  const server = await startServer({ port: 0, model: MODEL, backend: "builtin", parallel: 1, queue: 1, contextSize: 4096 });
  try {
    const long = { prompt: "Once upon a time", max_tokens: 4000, temperature: 0 };
    // A: a long generation holding the only slot; it leaves after its first text.
    const leave = new AbortController();
    const fa = firstText();
    const a = streamRequest(server.url, "/v1/completions", long, { signal: leave.signal, onEvent: fa.onEvent });
    await fa.seen;
    // B waits in the queue (its only place); C finds the queue full.
    const b = streamRequest(server.url, "/v1/completions", { prompt: "The little cat", max_tokens: 8, temperature: 0 });
    while (((await (await fetch(server.url + "/health")).json()) as { queue: number }).queue < 1) await new Promise((r) => setTimeout(r, 5));
    const c = await postJson(server.url, "/v1/completions", { prompt: "Hi", max_tokens: 2 });
    assert.equal(c.status, 503);
    assert.equal(c.headers.get("retry-after"), "1");
    assert.equal(c.body.error.code, "queue_full");
    leave.abort();
    const left = await a;
    assert.equal(left.done, false);
    const served = await b;
    assert.ok(served.done);
    assert.equal(served.final?.choices[0].finish_reason, "length");
    const text = await metrics(server.url);
    assert.equal(metricValue(text, "specdec_requests_cancelled_total"), 1);
    assert.equal(metricValue(text, 'specdec_generations_total{method="prompt-lookup",outcome="cancelled"}'), 1);
    // A stopped where it was: far from its 4000 tokens (B's 8 are the rest of the count).
    const generated = metricValue(text, "specdec_generated_tokens_total");
    assert.ok(generated - 8 < 4000, `the cancelled generation went on to ${generated - 8} tokens`);
    assert.equal(metricValue(text, 'specdec_http_errors_total{status="503"}'), 1);
  } finally {
    await server.close();
  }
});

test("a burst of 330 malformed requests (wrong types, huge numbers, deep nesting, invalid UTF-8, truncated JSON, wrong content types, huge bodies) all get 4xx; the server keeps serving", async () => {
  const seeds = Array.from({ length: 30 * MALFORMED_KINDS }, (_, i) => i);
  const kinds = new Set(seeds.map((s) => malformedRequest(s).description.split(":")[0]));
  assert.equal(kinds.size, MALFORMED_KINDS);
  const before = await postJson(one.url, "/v1/completions", requestOf(0));
  // Eight at a time, as a client pool would send them.
  const outcomes = [];
  for (let i = 0; i < seeds.length; i += 8) outcomes.push(...(await Promise.all(seeds.slice(i, i + 8).map((s) => probeMalformed(one.url, s)))));
  const wrong = outcomes.filter((o) => o.kind !== "4xx").map((o) => `${o.kind} ${o.status ?? o.error ?? ""} ${o.request.path} ${o.request.description.slice(0, 120)}`);
  assert.deepEqual(wrong, []);
  const statuses = new Set(outcomes.map((o) => o.status));
  for (const s of [400, 404, 413, 415]) assert.ok(statuses.has(s), `some answer was ${s}`);
  const after = await postJson(one.url, "/v1/completions", requestOf(0));
  assert.equal(after.status, 200);
  assert.equal(after.body.choices[0].text, before.body.choices[0].text);
});

test("a request over the server's time limit ends with a 504 (whole response) or an error event (stream), and frees its slot", async () => {
  const server = await startServer({ port: 0, model: MODEL, backend: "builtin", contextSize: 4096, timeoutMs: 200 });
  try {
    const long = { prompt: "Once upon a time", max_tokens: 4000, temperature: 0 };
    const whole = await postJson(server.url, "/v1/completions", long);
    assert.equal(whole.status, 504);
    assert.equal(whole.body.error.code, "timeout");
    const streamed = await streamRequest(server.url, "/v1/completions", long);
    assert.equal(streamed.status, 200);
    assert.equal(streamed.error?.code, "timeout");
    assert.equal(streamed.done, false);
    const short = await postJson(server.url, "/v1/completions", { prompt: "Hi", max_tokens: 4, temperature: 0 });
    assert.equal(short.status, 200);
  } finally {
    await server.close();
  }
});

test("SIGTERM during streams: running streams are cancelled with an error event after the grace period, the queued one gets 503, new connections are refused, exit code 0", async () => {
  const server = await startChildServer(["--model", MODEL, "--backend", "builtin", "--parallel", "2", "--ctx-size", "4096", "--shutdown-grace", "0.3"]);
  const long = { prompt: "Once upon a time", max_tokens: 4000, temperature: 0 };
  const fa = firstText(), fb = firstText();
  const a = streamRequest(server.url, "/v1/completions", long, { onEvent: fa.onEvent });
  const b = streamRequest(server.url, "/v1/completions", long, { onEvent: fb.onEvent });
  await Promise.all([fa.seen, fb.seen]);
  const queued = postJson(server.url, "/v1/completions", long);
  while (((await (await fetch(server.url + "/health")).json()) as { queue: number }).queue < 1) await new Promise((r) => setTimeout(r, 5));
  server.child.kill("SIGTERM");
  const [ra, rb, rq] = await Promise.all([a, b, queued]);
  for (const s of [ra, rb]) {
    assert.equal(s.status, 200);
    assert.ok(s.done || s.error?.code === "shutting_down", `a stream either finished or was told the server is shutting down (${JSON.stringify(s.error)})`);
  }
  assert.equal(rq.status, 503);
  assert.equal(rq.body.error.code, "shutting_down");
  assert.equal(await server.exited, 0, server.stderr());
  await assert.rejects(fetch(server.url + "/health"));
  assert.match(server.stderr(), /SIGTERM: finishing running generations/);
});
