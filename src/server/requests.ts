// Request bodies → jobs. JSON schemas (checked by the framework before a handler runs) give
// every field its type and range and refuse unknown fields; the code below then checks what a
// schema cannot (the prompt against the context, a method's options against its descriptor)
// and turns the request into a Job: prompt tokens and generation settings.

import { randomInt } from "node:crypto";
import { flagOf } from "../cli/methodOptions.js";
import type { MethodOption, MethodOptionValues } from "../drafters/method.js";
import { OptionError, SpecdecError } from "../errors.js";
import { MethodOptionError, methodNamed, methods } from "../methods.js";
import type { SamplingSettings } from "../sampling/samplingSettings.js";
import { drafterOptions, type OpenedTarget } from "../session.js";
import type { Token } from "../types.js";
import { ACCEPTANCE_RULES, type AcceptanceRule } from "../verifiers/acceptance.js";
import { ApiError } from "./apiError.js";
import type { ChatMessage, ChatTemplate } from "./chatTemplate.js";

/** What one request asks the server to generate. */
export interface Job {
  readonly kind: "chat" | "completion";
  readonly prompt: readonly Token[];
  readonly maxTokens: number;
  readonly sampling: SamplingSettings;
  readonly stop: readonly string[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly method: string;
  /** The method's options, resolved (defaults filled in, ranges checked). */
  readonly methodOptions: MethodOptionValues;
  /** A fixed draft length (speculative.n_max or the server's --draft-max); undefined = the cost model chooses per step. */
  readonly draftMax?: number;
  /** Proposals reaching fewer tokens ahead are not verified (speculative.n_min). */
  readonly draftMin: number;
  readonly treeNodes?: number;
  readonly acceptance?: AcceptanceRule;
}

/** Speculation settings the server was started with; a request's `speculative` overrides them. */
export interface SpeculationDefaults {
  readonly method: string;
  /** Method options from the command line, for whichever methods take them. */
  readonly methodOptions: MethodOptionValues;
  readonly draftMax?: number;
  readonly treeNodes?: number;
}

export interface RequestContext {
  readonly opened: OpenedTarget;
  readonly template: ChatTemplate;
  readonly defaults: SpeculationDefaults;
}

/** `ngramMax` → `ngram_max`: method options by their JSON names. */
export function jsonNameOf(option: string): string {
  return option.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

// ---- schemas ----

const MAX_TOKENS_LIMIT = 1_000_000;
const nullable = (type: string | string[]) => [...(Array.isArray(type) ? type : [type]), "null"];
const integer = (minimum: number, maximum: number) => ({ type: nullable("integer"), minimum, maximum });
const stopString = { type: "string", minLength: 1, maxLength: 1000 };

function methodOptionSchema(spec: MethodOption): object {
  const int = { type: "integer", minimum: spec.min ?? -(2 ** 31), maximum: spec.max ?? 2 ** 31 };
  switch (spec.kind) {
    case "integer":
      return int;
    case "integers":
      return { type: "object", additionalProperties: false, properties: Object.fromEntries(spec.fields!.map((f) => [f, { type: "integer", minimum: -(2 ** 31), maximum: 2 ** 31 }])) };
    case "treeChoices":
      return { type: "array", minItems: 1, maxItems: 1024, items: { type: "array", minItems: 1, maxItems: 64, items: { type: "integer", minimum: 0, maximum: 1 << 20 } } };
    case "file":
      return {}; // refused with its own message: files are fixed at start
  }
}

/** The `speculative` object: the method, draft lengths, the acceptance rule, and every registered method's options. */
function speculativeSchema(): object {
  const options: Record<string, object> = {};
  for (const m of methods()) for (const [name, spec] of Object.entries(m.options)) options[jsonNameOf(name)] = methodOptionSchema(spec);
  return {
    type: nullable("object"),
    additionalProperties: false,
    properties: {
      method: { type: "string", enum: methods().map((m) => m.name) },
      n_max: integer(0, 256),
      n_min: integer(0, 256),
      tree_nodes: integer(1, 1024),
      acceptance: { type: nullable("string"), enum: [...ACCEPTANCE_RULES, null] },
      ...options,
    },
  };
}

/** Fields both routes take (the OpenAI set, llama.cpp's top_k / min_p, and `speculative`). */
function commonProperties(): Record<string, object> {
  return {
    model: { type: nullable("string"), maxLength: 1000 },
    max_tokens: integer(1, MAX_TOKENS_LIMIT),
    temperature: { type: nullable("number"), minimum: 0, maximum: 2 },
    top_p: { type: nullable("number"), exclusiveMinimum: 0, maximum: 1 },
    top_k: integer(0, 2 ** 31 - 1),
    min_p: { type: nullable("number"), minimum: 0, exclusiveMaximum: 1 },
    seed: integer(0, 2 ** 32 - 1),
    stop: { description: "a non-empty string or up to 4 of them", anyOf: [stopString, { type: "array", maxItems: 4, items: stopString }, { type: "null" }] },
    stream: { type: nullable("boolean") },
    stream_options: { type: nullable("object"), additionalProperties: false, properties: { include_usage: { type: nullable("boolean") } } },
    n: integer(1, 1),
    user: { type: nullable("string"), maxLength: 1000 },
    // Known but unsupported: accepted at their neutral values only (checked below).
    presence_penalty: { type: nullable("number"), minimum: -2, maximum: 2 },
    frequency_penalty: { type: nullable("number"), minimum: -2, maximum: 2 },
    logit_bias: { type: nullable("object"), maxProperties: 0 },
    speculative: speculativeSchema(),
  };
}

const textPart = { type: "object", additionalProperties: false, required: ["type", "text"], properties: { type: { type: "string", enum: ["text"] }, text: { type: "string" } } };

export function chatBodySchema(): object {
  return {
    type: "object",
    additionalProperties: false,
    required: ["messages"],
    properties: {
      ...commonProperties(),
      messages: {
        type: "array",
        minItems: 1,
        maxItems: 10_000,
        items: {
          type: "object",
          additionalProperties: false,
          required: ["role", "content"],
          properties: {
            role: { type: "string", enum: ["system", "developer", "user", "assistant"] },
            content: { description: "a string or an array of text parts", anyOf: [{ type: "string" }, { type: "array", maxItems: 10_000, items: textPart }] },
            name: { type: "string", maxLength: 1000 },
          },
        },
      },
      max_completion_tokens: integer(1, MAX_TOKENS_LIMIT),
      logprobs: { type: nullable("boolean"), enum: [false, null] },
      top_logprobs: integer(0, 0),
      response_format: { type: nullable("object"), additionalProperties: false, required: ["type"], properties: { type: { type: "string", enum: ["text"] } } },
      metadata: { type: nullable("object"), maxProperties: 16, additionalProperties: { type: "string", maxLength: 512 } },
      store: { type: nullable("boolean"), enum: [false, null] },
    },
  };
}

export function completionBodySchema(): object {
  const tokenIds = { type: "array", minItems: 1, maxItems: MAX_TOKENS_LIMIT, items: { type: "integer", minimum: 0, maximum: 2 ** 31 - 1 } };
  return {
    type: "object",
    additionalProperties: false,
    required: ["prompt"],
    properties: {
      ...commonProperties(),
      prompt: {
        description: "a string, an array of one string, or an array of token ids",
        anyOf: [{ type: "string" }, { type: "array", minItems: 1, maxItems: 1, items: { type: "string" } }, tokenIds, { type: "array", minItems: 1, maxItems: 1, items: tokenIds }],
      },
      echo: { type: nullable("boolean"), enum: [false, null] },
      suffix: { type: nullable("string"), maxLength: 0 },
      best_of: integer(1, 1),
      logprobs: integer(0, 0),
    },
  };
}

// ---- bodies → jobs (the body has passed its schema) ----

type Body = Record<string, unknown>;

export function chatJob(body: Body, ctx: RequestContext): Job {
  refuseUnsupported(body);
  const messages: ChatMessage[] = (body.messages as Body[]).map((m) => ({
    role: m.role === "developer" ? "system" : (m.role as ChatMessage["role"]),
    content: typeof m.content === "string" ? m.content : (m.content as { text: string }[]).map((p) => p.text).join(""),
    ...(m.name !== undefined ? { name: m.name as string } : {}),
  }));
  const prompt = ctx.template.tokenize(messages);
  const maxTokens = (body.max_completion_tokens ?? body.max_tokens) as number | null | undefined;
  return job("chat", body, ctx, prompt, maxTokens, "messages", ctx.template.stops);
}

export function completionJob(body: Body, ctx: RequestContext): Job {
  refuseUnsupported(body);
  const { target } = ctx.opened;
  const given = body.prompt as string | string[] | number[] | number[][];
  const p = Array.isArray(given) && (typeof given[0] === "string" || Array.isArray(given[0])) ? (given[0] as string | number[]) : (given as string | number[]);
  let prompt: Token[];
  if (typeof p === "string") {
    prompt = target.tokenize(p);
  } else {
    const bad = p.findIndex((t) => t >= target.vocabSize);
    if (bad >= 0) throw new ApiError(400, `prompt token ${bad} is ${p[bad]}, outside the vocabulary (0..${target.vocabSize - 1})`, { param: "prompt" });
    prompt = p as Token[];
  }
  return job("completion", body, ctx, prompt, body.max_tokens as number | null | undefined, "prompt", []);
}

function job(kind: Job["kind"], body: Body, ctx: RequestContext, prompt: Token[], maxTokens: number | null | undefined, promptParam: string, templateStops: readonly string[]): Job {
  const { contextSize } = ctx.opened.target;
  if (prompt.length === 0) throw new ApiError(400, "the prompt is empty (and the model adds no BOS token)", { param: promptParam });
  if (prompt.length >= contextSize)
    throw new ApiError(400, `the prompt has ${prompt.length} tokens but the context holds ${contextSize}: at most ${contextSize - 1} leave room to generate`, { param: promptParam, code: "context_length_exceeded" });
  const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : (body.stop as string[]);
  const spec = (body.speculative ?? {}) as Body;
  const method = (spec.method as string | undefined) ?? ctx.defaults.method;
  const draftMax = (spec.n_max as number | null | undefined) ?? ctx.defaults.draftMax ?? undefined;
  const draftMin = (spec.n_min as number | null | undefined) ?? 0;
  if (draftMin > (draftMax ?? methodNamed(method).defaultDraftMax)) throw new ApiError(400, `speculative.n_min (${draftMin}) is larger than n_max (${draftMax ?? `the default ${methodNamed(method).defaultDraftMax}`})`, { param: "speculative.n_min" });
  const streamOptions = body.stream_options as Body | null | undefined;
  return {
    kind,
    prompt,
    maxTokens: maxTokens ?? contextSize - prompt.length,
    sampling: {
      temperature: (body.temperature as number | null) ?? 1,
      topK: (body.top_k as number | null) ?? 0,
      topP: (body.top_p as number | null) ?? 1,
      minP: (body.min_p as number | null) ?? 0,
      seed: (body.seed as number | null) ?? randomInt(2 ** 32),
    },
    stop: [...templateStops, ...stop],
    stream: body.stream === true,
    includeUsage: streamOptions?.include_usage === true,
    method,
    methodOptions: methodOptionsOf(method, spec, ctx),
    draftMax,
    draftMin,
    treeNodes: (spec.tree_nodes as number | null | undefined) ?? ctx.defaults.treeNodes,
    acceptance: (spec.acceptance as AcceptanceRule | null | undefined) ?? undefined,
  };
}

/** Fields the OpenAI API has that this server accepts only at their neutral values. */
function refuseUnsupported(body: Body): void {
  for (const name of ["presence_penalty", "frequency_penalty"]) {
    if (body[name] != null && body[name] !== 0) throw new ApiError(400, `${name} is not supported by this server (only 0)`, { param: name });
  }
}

const SPECULATIVE_FIELDS = new Set(["method", "n_max", "n_min", "tree_nodes", "acceptance"]);

/**
 * The method's options: the server's (command line) under the request's `speculative` ones,
 * resolved against the method's descriptor and the target's capabilities. A request never names
 * a file: those are fixed when the server starts.
 */
function methodOptionsOf(method: string, spec: Body, ctx: RequestContext): MethodOptionValues {
  const own = methodNamed(method).options;
  const byJsonName = new Map(Object.keys(own).map((name) => [jsonNameOf(name), name]));
  const given: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(ctx.defaults.methodOptions)) if (name in own && value !== undefined) given[name] = value;
  for (const [key, value] of Object.entries(spec)) {
    if (SPECULATIVE_FIELDS.has(key) || value === null) continue;
    const name = byJsonName.get(key);
    if (name === undefined) throw new ApiError(400, `speculative.${key} is not an option of method '${method}' (its options: ${[...byJsonName.keys()].join(", ") || "none"})`, { param: `speculative.${key}` });
    if (own[name].kind === "file") throw new ApiError(400, `speculative.${key} names a file, which a request cannot do: the server's files are fixed when it starts`, { param: `speculative.${key}` });
    given[name] = value;
  }
  try {
    return drafterOptions(ctx.opened, method, given);
  } catch (e) {
    if (!(e instanceof SpecdecError)) throw e;
    const param = e instanceof MethodOptionError ? `speculative.${jsonNameOf(e.option)}` : "speculative.method";
    // Options a request may set are named by their JSON names, the rest (files, the backend) by the server's flags.
    const message = e instanceof OptionError ? e.render((name) => (own[name] && own[name].kind !== "file" ? `speculative.${jsonNameOf(name)}` : `the server's ${flagOf(name)}`)) : e.message;
    throw new ApiError(400, message, { param });
  }
}

