// Responses in OpenAI's shapes (chat.completion, text_completion and their stream chunks), with
// llama.cpp's `timings` block and specdec's `tau` added.

import { randomUUID } from "node:crypto";
import type { GenerationResult, StopReason } from "../decode/speculativeDecode.js";
import type { GenerationStats } from "../decode/stats.js";
import type { Job } from "./requests.js";

/** What every object of one response shares. */
export interface ResponseMeta {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
  /** The lossy verifier's name, when the request asked for one. */
  readonly lossy?: string;
}

export function responseMeta(job: Job, model: string, lossy?: string): ResponseMeta {
  const id = (job.kind === "chat" ? "chatcmpl-" : "cmpl-") + randomUUID().replaceAll("-", "");
  return { id, created: Math.floor(Date.now() / 1000), model, ...(lossy ? { lossy } : {}) };
}

export type FinishReason = "stop" | "length";

/** OpenAI's finish_reason: "stop" at an end-of-generation token or a stop string, "length" when out of tokens or context. */
export function finishReason(reason: Exclude<StopReason, "abort">): FinishReason {
  return reason === "eog" || reason === "stop" ? "stop" : "length";
}

/** llama.cpp's timings block; the draft fields only when something was drafted. */
export function timingsOf(s: GenerationStats) {
  return {
    prompt_n: s.promptTokens,
    prompt_ms: s.prefillMs,
    prompt_per_second: s.prefillMs > 0 ? (s.promptTokens * 1000) / s.prefillMs : 0,
    predicted_n: s.generatedTokens,
    predicted_ms: s.decodeMs,
    predicted_per_second: s.tokensPerSecond,
    ...(s.draftedTokens > 0 ? { draft_n: s.draftedTokens, draft_n_accepted: s.acceptedTokens } : {}),
  };
}

function usageOf(s: GenerationStats) {
  return { prompt_tokens: s.promptTokens, completion_tokens: s.generatedTokens, total_tokens: s.promptTokens + s.generatedTokens };
}

function head(job: Job, meta: ResponseMeta, chunk: boolean) {
  const object = job.kind === "chat" ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return { id: meta.id, object, created: meta.created, model: meta.model, system_fingerprint: null, ...(meta.lossy ? { lossy: meta.lossy } : {}) };
}

/** The whole response of a request that did not stream. */
export function completionBody(job: Job, meta: ResponseMeta, result: GenerationResult, reason: FinishReason) {
  const choice =
    job.kind === "chat"
      ? { index: 0, message: { role: "assistant", content: result.text, refusal: null }, logprobs: null, finish_reason: reason }
      : { index: 0, text: result.text, logprobs: null, finish_reason: reason };
  return { ...head(job, meta, false), choices: [choice], usage: usageOf(result.stats), timings: timingsOf(result.stats), tau: result.stats.tau };
}

/** A stream chunk carrying text (chat: the first one also carries the role). */
export function textChunk(job: Job, meta: ResponseMeta, text: string, first = false) {
  const choice =
    job.kind === "chat"
      ? { index: 0, delta: first ? { role: "assistant", content: text } : { content: text }, logprobs: null, finish_reason: null }
      : { index: 0, text, logprobs: null, finish_reason: null };
  return { ...head(job, meta, true), choices: [choice] };
}

/** The last chunk with a choice: its finish_reason, with the timings and tau. */
export function finalChunk(job: Job, meta: ResponseMeta, result: GenerationResult, reason: FinishReason) {
  const choice = job.kind === "chat" ? { index: 0, delta: {}, logprobs: null, finish_reason: reason } : { index: 0, text: "", logprobs: null, finish_reason: reason };
  return { ...head(job, meta, true), choices: [choice], timings: timingsOf(result.stats), tau: result.stats.tau };
}

/** The chunk stream_options.include_usage asks for: no choices, the usage. */
export function usageChunk(job: Job, meta: ResponseMeta, result: GenerationResult) {
  return { ...head(job, meta, true), choices: [], usage: usageOf(result.stats) };
}
