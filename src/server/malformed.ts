// Malformed requests for a running server, and how it answered them: the fuzz campaign's hook
// (`probeMalformed(url, seed)`) and the server tests' burst. Every request made here is invalid
// by construction, so any answer but a 4xx — a 2xx, a 5xx, a dropped connection, no answer
// in time — is a server bug.

import { request as httpRequest } from "node:http";
import { SeededRng } from "../sampling/rng.js";

export interface MalformedRequest {
  /** The kind of damage and its details, for a report. */
  readonly description: string;
  readonly method: string;
  readonly path: string;
  /** Headers besides Content-Length (set from the body). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface ProbeOutcome {
  /** "4xx" is the only right answer to a malformed request. */
  readonly kind: "2xx" | "3xx" | "4xx" | "5xx" | "connection-error" | "hang";
  readonly status?: number;
  /** The connection error's code, for "connection-error". */
  readonly error?: string;
  readonly ms: number;
  readonly request: MalformedRequest;
}

export interface ProbeOptions {
  /** Sent as Authorization: Bearer (so that a keyed server looks at the body at all). */
  readonly apiKey?: string;
  /** No status line within this long = "hang". Default 10,000 ms. */
  readonly timeoutMs?: number;
  /** Size of the "huge body" case: more than the server's body limit. Default 3 MiB (the default limit is 2 MiB). */
  readonly hugeBytes?: number;
}

const CHAT = "/v1/chat/completions";
const COMPLETIONS = "/v1/completions";
const JSON_TYPE = { "content-type": "application/json" };

/** A valid request body for the route; each damage below makes it invalid. */
function validBody(path: string): Record<string, unknown> {
  const common = { model: "any", max_tokens: 4, temperature: 0 };
  return path === CHAT ? { ...common, messages: [{ role: "user", content: "Once upon a time" }] } : { ...common, prompt: "Once upon a time" };
}

// Values each field must refuse (wrong type or out of range); null is allowed for most, so absent here.
const WRONG_VALUES: Record<string, readonly unknown[]> = {
  max_tokens: ["8", 1.5, 0, -1, true, [], {}],
  temperature: ["0", -0.1, 2.5, true, [0], {}],
  top_p: ["1", 0, 1.5, -1, false, []],
  top_k: [-1, 1.5, "5", {}, [1]],
  min_p: [1, -0.5, "0.1", true],
  seed: [-1, 1.5, "1", 2 ** 33, {}],
  stop: [5, "", [""], ["a", "b", "c", "d", "e"], [1], { a: "b" }, true],
  stream: ["true", 1, [], {}],
  stream_options: ["yes", 1, [], { include_usage: "yes" }, { other: true }],
  n: [2, 0, -1, "1", 1.5],
  user: [5, {}, []],
  presence_penalty: [1, "0", 3],
  frequency_penalty: [-1, [], 5],
  logit_bias: [{ "1": 5 }, "x", 5],
  speculative: ["prompt-lookup", 5, [], { method: "nope" }, { method: 1 }, { n_max: -1 }, { n_max: 257 }, { n_max: 2, n_min: 3 }, { draft_model: "/etc/passwd" }, { method: "draft", draft_model: "x.gguf" }, { method: "none", ngram_max: 3 }, { ngram_max: 0 }, { ngram_max: "3" }, { tree: "0;1" }, { tree: [[-1]] }, { tree: [[]] }, { lookahead: { window: "5" } }, { unknown: 1 }, { acceptance: "maybe" }],
  model: [5, {}, [], true],
};
const WRONG_CHAT: Record<string, readonly unknown[]> = {
  messages: [null, "hi", {}, [], [{}], [{ role: "user" }], [{ content: "hi" }], [{ role: "tool", content: "x" }], [{ role: "user", content: 5 }], [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }], [{ role: "user", content: [{ type: "text" }] }], [{ role: "user", content: "x", extra: 1 }], [{ role: "user", content: null }], ["user: hi"]],
  max_completion_tokens: [0, "4", 1.5, -3],
  logprobs: [true, 1, "yes"],
  top_logprobs: [1, 5, -1],
  response_format: [{ type: "json_object" }, "text", { type: "text", schema: {} }],
  tools: [[{ type: "function", function: { name: "f" } }]],
};
const WRONG_COMPLETION: Record<string, readonly unknown[]> = {
  prompt: [null, 5, {}, [], [1.5], [-1], ["a", "b"], [[1], [2]], [true], [[]], [2 ** 31]],
  echo: [true, "no", 1],
  suffix: ["after", 5],
  best_of: [2, 0],
  logprobs: [1, true, -1],
};

const HUGE_NUMBERS = ["1e308", "-1e308", "1e400", "-1e400", "18446744073709551616", "9007199254740993", "1e20", "123456789012345678901234567890"];
const NUMERIC_FIELDS = ["max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "n"];
const BAD_UTF8 = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80]];
const BAD_JSON = ["{'prompt': 'x'}", '{"prompt": "x",}', '{"prompt": NaN}', '{prompt: "x"}', '{"prompt": "x"} {"prompt": "y"}', '{"prompt": "x" // comment\n}', '{"prompt": "\\x41"}', '{"prompt": "a\u0001b"}', "undefined", '{"prompt": Infinity}', '{"prompt": "x"]', "{{}}"];
const NOT_OBJECTS = ["null", "[]", "1", '"a string"', "true", "[{\"prompt\": \"x\"}]"];
const CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/json", "", "application/octet-stream"];

type Damage = (rng: SeededRng, path: string, hugeBytes: number) => Omit<MalformedRequest, "path"> & { path?: string };

const pick = <T>(rng: SeededRng, items: readonly T[]): T => items[Math.floor(rng.next() * items.length)];
const json = (body: unknown) => Buffer.from(JSON.stringify(body));

/** The kinds of damage, in the order seeds cycle through them. */
const DAMAGES: readonly [string, Damage][] = [
  ["wrong type or range", (rng, path) => {
    const table = { ...WRONG_VALUES, ...(path === CHAT ? WRONG_CHAT : WRONG_COMPLETION) };
    const field = pick(rng, Object.keys(table));
    const value = pick(rng, table[field]);
    return { description: `${field} = ${JSON.stringify(value)}`, method: "POST", headers: JSON_TYPE, body: json({ ...validBody(path), [field]: value }) };
  }],
  ["huge number", (rng, path) => {
    const field = pick(rng, NUMERIC_FIELDS);
    const literal = pick(rng, HUGE_NUMBERS);
    const text = JSON.stringify({ ...validBody(path), [field]: 0 }).replace(`"${field}":0`, `"${field}":${literal}`);
    return { description: `${field} = ${literal}`, method: "POST", headers: JSON_TYPE, body: Buffer.from(text) };
  }],
  ["deep nesting", (rng, path) => {
    const depth = 1000 + Math.floor(rng.next() * 99_000);
    const [open, close] = pick(rng, [["[", "]"], ['{"a":', "}"]] as const);
    const deep = open.repeat(depth) + (open === "[" ? "" : "1") + close.repeat(depth);
    const where = pick(rng, ["body", path === CHAT ? "messages" : "prompt", "stop", "speculative"]);
    const text = where === "body" ? deep : JSON.stringify({ ...validBody(path), [where]: 0 }).replace(`"${where}":0`, `"${where}":${deep}`);
    return { description: `${depth} levels of ${open} in ${where}`, method: "POST", headers: JSON_TYPE, body: Buffer.from(text) };
  }],
  ["invalid UTF-8", (rng, path) => {
    const bytes = pick(rng, BAD_UTF8);
    const text = JSON.stringify(validBody(path));
    const at = text.indexOf("Once") + 2;
    return { description: `bytes ${bytes.map((b) => b.toString(16)).join(" ")} in a string`, method: "POST", headers: JSON_TYPE, body: Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bytes), Buffer.from(text.slice(at))]) };
  }],
  ["truncated JSON", (rng, path) => {
    const text = JSON.stringify({ ...validBody(path), stop: ["\n\n"], speculative: { method: "prompt-lookup", n_max: 2 } });
    const cut = Math.floor(rng.next() * (text.length - 1)); // 0..length - 2: never the whole document
    return { description: `first ${cut} of ${text.length} characters`, method: "POST", headers: JSON_TYPE, body: Buffer.from(text.slice(0, cut)) };
  }],
  ["wrong content type", (rng, path) => {
    const type = pick(rng, CONTENT_TYPES);
    return { description: `Content-Type ${JSON.stringify(type)}`, method: "POST", headers: (type === "" ? {} : { "content-type": type }) as Record<string, string>, body: json(validBody(path)) };
  }],
  ["huge body", (_rng, path, hugeBytes) => {
    const body = { ...validBody(path) };
    const filler = "a".repeat(hugeBytes);
    if (path === CHAT) body.messages = [{ role: "user", content: filler }];
    else body.prompt = filler;
    return { description: `${hugeBytes} bytes of prompt`, method: "POST", headers: JSON_TYPE, body: json(body) };
  }],
  ["not JSON", (rng) => {
    const text = pick(rng, BAD_JSON);
    return { description: JSON.stringify(text), method: "POST", headers: JSON_TYPE, body: Buffer.from(text) };
  }],
  ["not an object", (rng) => {
    const text = pick(rng, NOT_OBJECTS);
    return { description: text, method: "POST", headers: JSON_TYPE, body: Buffer.from(text) };
  }],
  ["unknown or poisoned field", (rng, path) => {
    const extra = pick(rng, ['"__proto__":{"max_tokens":1}', '"constructor":{"prototype":{"x":1}}', '"functions":[]', '"model_path":"/etc/passwd"', '"MAX_TOKENS":4', '"":1']);
    const text = JSON.stringify(validBody(path)).replace(/^\{/, `{${extra},`);
    return { description: extra, method: "POST", headers: JSON_TYPE, body: Buffer.from(text) };
  }],
  ["wrong route or verb", (rng, path) => {
    const [method, where] = pick(rng, [["GET", path], ["PUT", path], ["DELETE", path], ["POST", "/v1/nothing"], ["POST", "/v1/models"], ["POST", "/../etc/passwd"], ["PATCH", "/health"]] as const);
    return { description: `${method} ${where}`, method, path: where, headers: JSON_TYPE, body: json(validBody(path)) };
  }],
];

/** The malformed request of a seed (deterministic): seeds cycle through the kinds of damage and the two routes. */
export function malformedRequest(seed: number, hugeBytes = 3 * 1024 * 1024): MalformedRequest {
  const [kind, damage] = DAMAGES[Math.abs(Math.trunc(seed)) % DAMAGES.length];
  const path = Math.floor(Math.abs(Math.trunc(seed)) / DAMAGES.length) % 2 === 0 ? CHAT : COMPLETIONS;
  const rng = new SeededRng(seed);
  const r = damage(rng, path, hugeBytes);
  return { ...r, path: r.path ?? path, description: `${kind}: ${r.description}` };
}

/** How many kinds of damage there are (consecutive seeds from 0 cover each on both routes after 2 × this many). */
export const MALFORMED_KINDS = DAMAGES.length;

/**
 * Send one malformed request (a seed's, or one given) to the server at `url` and classify the
 * answer by its status line. Never throws; the connection is not reused.
 */
export function probeMalformed(url: string, request: MalformedRequest | number, options: ProbeOptions = {}): Promise<ProbeOutcome> {
  const r = typeof request === "number" ? malformedRequest(request, options.hugeBytes) : request;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: Omit<ProbeOutcome, "ms" | "request">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...o, ms: performance.now() - started, request: r });
    };
    const headers: Record<string, string | number> = { ...r.headers, "content-length": r.body.length };
    if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
    const req = httpRequest(new URL(r.path, url), { method: r.method, headers, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      const kind = status >= 500 ? "5xx" : status >= 400 ? "4xx" : status >= 300 ? "3xx" : "2xx";
      finish({ kind, status });
    });
    req.on("error", (e: NodeJS.ErrnoException) => finish({ kind: "connection-error", error: e.code ?? e.message }));
    const timer = setTimeout(() => finish({ kind: "hang" }), timeoutMs);
    req.end(r.body);
  });
}
