// One generation request answered on the raw response: wait for a slot, then either one JSON
// object at the end or server-sent events as the loop steps, and the metrics of how it ended.
// A client that leaves aborts its generation (its slot frees at the next step); so do the
// per-request time limit and the shutdown, which are reported as errors.

import type { ServerResponse } from "node:http";
import type { GenerationResult } from "../decode/speculativeDecode.js";
import { verifierFor } from "../verifiers/acceptance.js";
import { ApiError, toApiError, writeApiError } from "./apiError.js";
import { runJob } from "./generation.js";
import type { Outcome, ServerMetrics } from "./metrics.js";
import type { Job } from "./requests.js";
import { completionBody, finalChunk, finishReason, responseMeta, textChunk, usageChunk, type ResponseMeta } from "./responses.js";
import type { SlotPool } from "./slots.js";

/** What every response of one server shares. */
export interface Responder {
  readonly pool: SlotPool;
  readonly metrics: ServerMetrics;
  /** The model's id in responses. */
  readonly model: string;
  /** Per-request limit in ms (0 = none). */
  readonly timeoutMs: number;
  readonly bodyLimit: number;
}

/** The abort reason of a client that left: nothing more to write. */
export const CLIENT_GONE = Symbol("client gone");

export const shuttingDown = () => new ApiError(503, "the server is shutting down", { code: "shutting_down" });

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" };

export async function respond(env: Responder, job: Job, res: ServerResponse, ac: AbortController, arrived: number): Promise<void> {
  const { pool, metrics, timeoutMs, bodyLimit } = env;
  const verifier = verifierFor(job.acceptance);
  const meta: ResponseMeta = responseMeta(job, env.model, verifier?.lossy ? verifier.name : undefined);
  const onClose = () => {
    if (!res.writableEnded) ac.abort(CLIENT_GONE);
  };
  res.on("close", onClose);
  const timer = timeoutMs > 0 ? setTimeout(() => ac.abort(new ApiError(504, `the request took longer than the server's limit of ${timeoutMs / 1000} s`, { code: "timeout" })), timeoutMs) : undefined;
  let started = false, first = true, firstStep = true;
  const send = (data: unknown) => sendEvent(res, data, ac.signal);
  const reportError = (e: ApiError) => {
    metrics.error(e.status);
    if (e.status >= 500 && e.status !== 503 && e.status !== 504) process.stderr.write(`specdec serve: ${e.message}\n`);
    if (!res.headersSent) return writeApiError(res, e);
    void send(e.body());
    res.end();
  };
  let result: GenerationResult | undefined;
  try {
    result = await runJob(pool, job, ac.signal, {
      started() {
        started = true;
        if (!job.stream) return;
        res.writeHead(200, SSE_HEADERS);
        if (job.kind === "chat") {
          void send(textChunk(job, meta, "", true));
          first = false;
        }
      },
      async step(event) {
        if (firstStep) {
          firstStep = false;
          metrics.firstToken((performance.now() - arrived) / 1000);
        }
        if (!job.stream || event.text === "") return;
        await send(textChunk(job, meta, event.text, first));
        first = false;
      },
    });
  } catch (e) {
    const reason = ac.signal.aborted ? ac.signal.reason : e;
    if (started) metrics.generation(job.method, reason === CLIENT_GONE ? "cancelled" : outcomeOf(reason), undefined);
    if (reason === CLIENT_GONE) metrics.clientCancelled();
    else reportError(toApiError(reason, bodyLimit));
    return;
  } finally {
    clearTimeout(timer);
    res.off("close", onClose);
  }
  const { stopReason } = result;
  if (stopReason === "abort") {
    const reason = ac.signal.reason;
    metrics.generation(job.method, reason === CLIENT_GONE ? "cancelled" : outcomeOf(reason), result.stats);
    if (reason === CLIENT_GONE) metrics.clientCancelled();
    else reportError(toApiError(reason, bodyLimit));
    return;
  }
  const reason = finishReason(stopReason);
  metrics.generation(job.method, reason, result.stats);
  if (!job.stream) {
    const body = JSON.stringify(completionBody(job, meta, result, reason));
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  await send(finalChunk(job, meta, result, reason));
  if (job.includeUsage) await send(usageChunk(job, meta, result));
  await send("[DONE]");
  res.end();
}

/** Write one SSE event (`data: ...`); resolves once the client has taken it, left, or the generation was aborted. */
function sendEvent(res: ServerResponse, data: unknown, signal: AbortSignal): Promise<void> | void {
  if (res.destroyed || res.writableEnded) return;
  if (res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`)) return;
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
    signal.addEventListener("abort", done);
  });
}

function outcomeOf(reason: unknown): Outcome {
  if (reason instanceof ApiError && reason.errorCode === "timeout") return "timeout";
  if (reason instanceof ApiError && reason.errorCode === "shutting_down") return "shutdown";
  return "error";
}
