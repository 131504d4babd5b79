// specdec serve through the official openai client: chat and text completions, streamed and
// not, equal to `specdec generate` at temperature 0 (the CLI run as a separate process on the
// same model), with timings and tau consistent with the method; the chat template path; the
// request checks (API key, context, fixed model file).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { openGguf } from "../src/gguf/reader.js";
import { kv, writeGguf, type GgufWriteEntry } from "../src/gguf/writer.js";
import { startServer, type RunningServer } from "../src/server/server.js";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { postJson } from "./support/serverClient.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");
const STORIES260K = sharedFile("models", "stories260K.gguf");
const OTHER_MODEL = sharedFile("models", "llama-2-tiny-random.gguf");
const tmp = mkdtempSync(join(tmpdir(), "specdec-serve-"));

// A retelling prompt: a story, a blank line and its first sentence again (prompt lookup can copy).
const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. " +
  'She wanted to play with it, but it was too high. Lily\'s mom said, "Be careful, Lily!" Lily smiled and ran to the ball.\n\n' +
  "Once upon a time, there was a little girl named Lily.";

interface CliResult {
  text: string;
  tokens: number[];
  stats: { draftedTokens: number; acceptedTokens: number; tau: number; promptTokens: number };
}

/** `specdec generate --json` in its own process. */
function generateCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, "generate", "--json", "--temperature", "0", ...args], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as CliResult;
}

type Extra = { timings: Record<string, number>; tau: number };
const extra = (x: unknown) => x as Extra;

// The default family on the default backend (llama.cpp for prompt lookup), two slots.
let family: RunningServer;
let client: OpenAI;
// stories260K on the built-in engine, with an API key.
let keyed: RunningServer;

before(async () => {
  family = await startServer({ port: 0, parallel: 2 });
  client = new OpenAI({ baseURL: family.url + "/v1", apiKey: "unused", maxRetries: 0 });
  keyed = await startServer({ port: 0, model: STORIES260K, backend: "builtin", apiKey: "s3cret" });
});

after(async () => {
  await family?.close();
  await keyed?.close();
});

test("completions: at temperature 0 the text, tokens, drafted and accepted counts and tau equal specdec generate's", async () => {
  // A fixed draft length on both sides: the cost model's budgets follow timing, so counts would differ.
  const cli = generateCli("--max-tokens", "64", "--draft-max", "2", "--prompt", STORY);
  const r = await client.completions.create({ model: family.model, prompt: STORY, max_tokens: 64, temperature: 0, speculative: { n_max: 2 } } as never);
  assert.equal(r.object, "text_completion");
  assert.equal(r.model, "stories-target");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].text, cli.text);
  assert.equal(r.choices[0].finish_reason, cli.tokens.length === 64 ? "length" : "stop");
  assert.deepEqual(r.usage, { prompt_tokens: cli.stats.promptTokens, completion_tokens: cli.tokens.length, total_tokens: cli.stats.promptTokens + cli.tokens.length });
  const { timings, tau } = extra(r);
  assert.equal(timings.predicted_n, cli.tokens.length);
  assert.equal(timings.prompt_n, cli.stats.promptTokens);
  assert.equal(timings.draft_n, cli.stats.draftedTokens);
  assert.equal(timings.draft_n_accepted, cli.stats.acceptedTokens);
  assert.ok(timings.draft_n_accepted > 0, "prompt lookup copies from a retelling prompt");
  assert.equal(tau, cli.stats.tau);
  assert.ok(tau > 1);
  for (const k of ["prompt_ms", "predicted_ms", "predicted_per_second"]) assert.equal(typeof timings[k], "number", k);

  // Streamed: the deltas join to the same text; the last chunk has the finish reason and the timings.
  const stream = await client.completions.create({ model: family.model, prompt: STORY, max_tokens: 64, temperature: 0, stream: true, stream_options: { include_usage: true }, speculative: { n_max: 2 } } as OpenAI.CompletionCreateParamsStreaming);
  let text = "";
  let finish: string | null = null, usage, streamedTau;
  for await (const chunk of stream) {
    if (chunk.choices[0]) {
      text += chunk.choices[0].text;
      if (chunk.choices[0].finish_reason) {
        finish = chunk.choices[0].finish_reason;
        streamedTau = extra(chunk).tau;
      }
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, cli.text);
  assert.equal(finish, r.choices[0].finish_reason);
  assert.equal(streamedTau, tau);
  assert.deepEqual(usage, r.usage);
});

test('chat: the fallback transcript, streamed and not, equals specdec generate on "User: ...\\nAssistant:" with the stop "\\nUser:"', async () => {
  const messages = [
    { role: "system" as const, content: "You tell short stories." },
    { role: "user" as const, content: "Tell me a story about a dog." },
  ];
  const cli = generateCli("--max-tokens", "48", "--stop", "\nUser:", "--prompt", "System: You tell short stories.\nUser: Tell me a story about a dog.\nAssistant:");
  const r = await client.chat.completions.create({ model: family.model, messages, max_tokens: 48, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(r.choices[0].message.content, cli.text);
  assert.equal(r.usage?.prompt_tokens, cli.stats.promptTokens);

  const stream = await client.chat.completions.create({ model: family.model, messages, max_tokens: 48, temperature: 0, stream: true });
  let text = "", role, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    role ??= chunk.choices[0]?.delta.role;
    text += chunk.choices[0]?.delta.content ?? "";
  }
  assert.equal(role, "assistant");
  assert.equal(text, cli.text);
  assert.ok(chunks > 2);
});

test('speculative: "method": "none" gives tau 1 and no draft fields; "draft" equals specdec generate --method draft', async () => {
  const none = await client.completions.create({ model: family.model, prompt: STORY, max_tokens: 32, temperature: 0, speculative: { method: "none" } } as never);
  const { timings, tau } = extra(none);
  assert.equal(tau, 1);
  assert.equal(timings.draft_n, undefined);
  assert.equal(timings.draft_n_accepted, undefined);

  const cli = generateCli("--max-tokens", "32", "--method", "draft", "--draft-max", "4", "--prompt", "Once upon a time");
  const draft = await client.completions.create({ model: family.model, prompt: "Once upon a time", max_tokens: 32, temperature: 0, speculative: { method: "draft", n_max: 4 } } as never);
  assert.equal(draft.choices[0].text, cli.text);
  assert.equal(extra(draft).timings.draft_n, cli.stats.draftedTokens);
  assert.equal(extra(draft).timings.draft_n_accepted, cli.stats.acceptedTokens);
  assert.equal(extra(draft).tau, cli.stats.tau);

  // n_max and n_min: a draft length of 4 with drafts shorter than 4 dropped changes how many
  // guesses are checked, never the text.
  const plain = await client.completions.create({ model: family.model, prompt: STORY, max_tokens: 48, temperature: 0, speculative: { method: "none" } } as never);
  const upTo4 = await client.completions.create({ model: family.model, prompt: STORY, max_tokens: 48, temperature: 0, speculative: { method: "prompt-lookup", n_max: 4 } } as never);
  const only4 = await client.completions.create({ model: family.model, prompt: STORY, max_tokens: 48, temperature: 0, speculative: { method: "prompt-lookup", n_max: 4, n_min: 4 } } as never);
  assert.equal(upTo4.choices[0].text, plain.choices[0].text);
  assert.equal(only4.choices[0].text, plain.choices[0].text);
  assert.notEqual(extra(upTo4).timings.draft_n % 4, 0, "this prompt gives some drafts shorter than 4");
  assert.equal(extra(only4).timings.draft_n % 4, 0, `only whole 4-token drafts are verified (${extra(only4).timings.draft_n} guesses)`);
});

test("speculative options are checked against the method: out of range, foreign and file-naming errors are 400s naming the field", async () => {
  const bad = async (speculative: object, param: string, pattern: RegExp) => {
    const r = await postJson(family.url, "/v1/completions", { prompt: "Hi", max_tokens: 2, speculative });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.type, "invalid_request_error");
    assert.equal(r.body.error.param, param);
    assert.match(r.body.error.message, pattern);
  };
  await bad({ ngram_max: 65 }, "speculative.ngram_max", /<= 64/);
  await bad({ ngram_min: 3, ngram_max: 2 }, "speculative", /ngramMin \(3\) and ngramMax \(2\)/);
  await bad({ method: "none", candidates: 2 }, "speculative.candidates", /not an option of method 'none'/);
  await bad({ method: "draft", draft_model: OTHER_MODEL }, "speculative.draft_model", /cannot/);
  // Tree methods run on llama.cpp too (the binding has tree attention): no capability error.
  assert.equal((await postJson(family.url, "/v1/completions", { prompt: "Hi", max_tokens: 2, speculative: { candidates: 3 } })).status, 200);
  await bad({ n_max: 2, n_min: 3 }, "speculative.n_min", /larger than n_max/);
});

test("the model is fixed at start: a request naming another model file gets the served model's output", async () => {
  const own = await postJson(family.url, "/v1/completions", { prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
  const other = await postJson(family.url, "/v1/completions", { model: OTHER_MODEL, prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
  assert.equal(other.status, 200);
  assert.equal(other.body.model, "stories-target");
  assert.equal(other.body.choices[0].text, own.body.choices[0].text);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ["stories-target"]);
  assert.equal((await client.models.retrieve("stories-target")).id, "stories-target");
  await assert.rejects(client.models.retrieve("llama-2-tiny-random"), (e: unknown) => e instanceof OpenAI.NotFoundError);
});

test("a prompt longer than the context is a 400 with the token counts", async () => {
  const long = "Once upon a time there was a cat. ".repeat(40);
  const r = await postJson(family.url, "/v1/completions", { prompt: long, max_tokens: 4 });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, "context_length_exceeded");
  assert.equal(r.body.error.param, "prompt");
  assert.match(r.body.error.message, /the prompt has \d+ tokens but the context holds 256/);
  const c = await postJson(family.url, "/v1/chat/completions", { messages: [{ role: "user", content: long }], max_tokens: 4 });
  assert.equal(c.status, 400);
  assert.equal(c.body.error.param, "messages");
});

test("--api-key: a missing or wrong key is a 401 in OpenAI's shape; /health needs none", async () => {
  const body = { prompt: "Once", max_tokens: 4, temperature: 0 };
  const missing = await postJson(keyed.url, "/v1/completions", body);
  assert.equal(missing.status, 401);
  assert.deepEqual(Object.keys(missing.body.error).sort(), ["code", "message", "param", "type"]);
  assert.equal(missing.body.error.code, "invalid_api_key");
  assert.equal((await postJson(keyed.url, "/v1/completions", body, { authorization: "Bearer s3cret!" })).status, 401);
  assert.equal((await fetch(keyed.url + "/metrics")).status, 401);
  assert.equal((await fetch(keyed.url + "/health")).status, 200);
  const wrong = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(wrong.completions.create({ model: keyed.model, prompt: "Once", max_tokens: 4 }), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  const right = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "s3cret", maxRetries: 0 });
  const r = await right.completions.create({ model: keyed.model, prompt: "Once", max_tokens: 4, temperature: 0 });
  assert.equal(r.choices[0].finish_reason, "length");
});

test("a chat template in the GGUF is used: control tokens in it become tokens, BOS once, and a template that raises is a 400", async () => {
  // stories260K with a template of our own: <s> is its BOS, </s> its EOS (ids 1 and 2).
  const path = join(tmp, "stories260K-chat.gguf");
  const template = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}[assistant]";
  copyWithMetadata(STORIES260K, path, [kv.string("tokenizer.chat_template", template)]);
  const server = await startServer({ port: 0, model: path, backend: "builtin" });
  try {
    assert.equal(server.chatTemplate, "model");
    const target = await BuiltinTarget.load(STORIES260K);
    const text = (s: string) => target.tokenize(s, false);
    const expected = [1, ...text("[user] Hi there"), 2, ...text("[assistant]")];
    const chat = await postJson(server.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi there" }], max_tokens: 24, temperature: 0 });
    assert.equal(chat.status, 200, JSON.stringify(chat.body));
    assert.equal(chat.body.usage.prompt_tokens, expected.length);
    const byIds = await postJson(server.url, "/v1/completions", { prompt: expected, max_tokens: 24, temperature: 0 });
    assert.equal(chat.body.choices[0].message.content, byIds.body.choices[0].text);
    const raised = await postJson(server.url, "/v1/chat/completions", { messages: [{ role: "system", content: "x" }], max_tokens: 4 });
    assert.equal(raised.status, 400);
    assert.match(raised.body.error.message, /no system messages/);
  } finally {
    await server.close();
  }
  // A template file that does not parse stops the start with one line.
  const broken = join(tmp, "broken.jinja");
  writeFileSync(broken, "{% if %}");
  await assert.rejects(startServer({ port: 0, model: STORIES260K, backend: "builtin", chatTemplateFile: broken }), /does not parse/);
});

/** A copy of a GGUF file with extra metadata entries. */
function copyWithMetadata(from: string, to: string, extraEntries: GgufWriteEntry[]): void {
  const f = openGguf(from);
  try {
    const metadata = [...f.metadata].filter(([key]) => key !== "general.alignment").map(([key, e]) => ({ key, type: e.type, value: e.value }));
    const tensors = f.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: f.readTensorData(t) }));
    writeGguf(to, { metadata: [...metadata, ...extraEntries], tensors, alignment: f.alignment });
  } finally {
    f.close();
  }
}
