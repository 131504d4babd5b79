// `specdec serve`: an OpenAI-compatible HTTP server (fastify) over one model, N slots and the
// speculative loop. Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
// GET /health, GET /metrics. Requests are validated before anything reaches the model; a
// failing request never takes the server down; the model file is fixed at start.

import { createHash, timingSafeEqual } from "node:crypto";
import { basename } from "node:path";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { SpecdecError } from "../errors.js";
import { methodNamed } from "../methods.js";
import { openPassCost, drafterOptions, methodNeeds, openTarget, type OpenedTarget } from "../session.js";
import { ApiError, toApiError } from "./apiError.js";
import { loadChatTemplate, type ChatTemplate } from "./chatTemplate.js";
import { ServerMetrics } from "./metrics.js";
import { DEFAULT_BODY_LIMIT, DEFAULT_PORT, DEFAULT_QUEUE, DEFAULT_TIMEOUT_MS, type ServeOptions } from "./options.js";
import { chatBodySchema, chatJob, completionBodySchema, completionJob, type Job, type RequestContext, type SpeculationDefaults } from "./requests.js";
import { respond, shuttingDown, type Responder } from "./respond.js";
import { schemaError } from "./schemaErrors.js";
import { SlotPool } from "./slots.js";

export interface RunningServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  /** The model's id in responses and /v1/models: its file name without .gguf. */
  readonly model: string;
  readonly backend: string;
  readonly parallel: number;
  readonly chatTemplate: ChatTemplate["source"];
  /**
   * Stop serving: new requests get 503, queued ones 503, running generations get up to
   * `graceMs` to finish and are then cancelled (a stream ends with an error event); then the
   * port closes and the models are released.
   */
  close(graceMs?: number): Promise<void>;
}

/** Load the model, open the slots and listen. Errors in the options or files are SpecdecErrors (one line). */
export async function startServer(o: ServeOptions = {}): Promise<RunningServer> {
  const parallel = o.parallel ?? 1;
  const maxQueue = o.queue ?? DEFAULT_QUEUE;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 256) throw new SpecdecError(`parallel must be an integer in 1..256, got ${parallel}`);
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new SpecdecError(`queue must be an integer >= 0, got ${maxQueue}`);
  if (o.apiKey === "") throw new SpecdecError("the API key is empty");
  const methodOptions = o.methodOptions ?? {};
  const method = methodNamed(o.method ?? (methodOptions.draftModel !== undefined ? "draft" : "prompt-lookup")).name;
  const ownOptions = Object.fromEntries(Object.entries(methodOptions).filter(([name]) => name in methodNamed(method).options));

  const opened = await openTarget({ model: o.model, backend: o.backend, contextSize: o.contextSize, threads: o.threads }, { name: method, needs: methodNeeds(method, ownOptions) });
  let pool: SlotPool | undefined;
  try {
    const template = loadChatTemplate(opened.target, opened.path, o.chatTemplateFile);
    const defaults: SpeculationDefaults = { method, methodOptions, draftMax: o.draftMax, treeNodes: o.treeNodes };
    // The default method's drafter in every slot now: a bad helper file fails the start, not a request.
    const resolved = drafterOptions(opened, method, ownOptions);
    // The target's pass costs for the cost model (cached; measured once per model, backend and machine).
    const passCost = o.draftMax === undefined && o.planner !== "fixed"
      ? { plain: await openPassCost(opened), hidden: opened.target.capabilities.hiddenStates ? await openPassCost(opened, { hidden: true }) : undefined }
      : undefined;
    pool = await SlotPool.open(opened, parallel, maxQueue, passCost);
    for (const slot of pool.slots) await slot.drafter(method, resolved);
    return await listen(o, opened, pool, { opened, template, defaults }, timeoutMs);
  } catch (e) {
    if (pool) await pool.dispose();
    else await opened.target.dispose();
    throw e;
  }
}

async function listen(o: ServeOptions, opened: OpenedTarget, pool: SlotPool, ctx: RequestContext, timeoutMs: number): Promise<RunningServer> {
  const modelId = basename(opened.path).replace(/\.gguf$/i, "");
  const created = Math.floor(Date.now() / 1000);
  const metrics = new ServerMetrics(pool.slots.length);
  pool.onChange = (busy, queued) => {
    metrics.slotsBusy.set(busy);
    metrics.queueLength.set(queued);
  };
  const bodyLimit = o.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const keyDigest = o.apiKey === undefined ? undefined : sha256(o.apiKey);
  const running = new Map<AbortController, Promise<void>>(); // generations under way → their end
  let closing = false;

  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit,
    // Time to receive a whole request (not to answer it): a client that trickles its body is cut off.
    requestTimeout: 30_000,
    forceCloseConnections: true,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true } },
    schemaErrorFormatter: (errors) => schemaError(errors),
  });

  // JSON bodies only, and only valid UTF-8: a decoder that replaced bad bytes would hide them.
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body: Buffer, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return done(new ApiError(400, "the request body is not valid UTF-8"), undefined);
    }
    if (text.trim() === "") return done(new ApiError(400, "the request body is empty: send a JSON object"), undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  });

  const fail = (reply: FastifyReply, e: ApiError) => {
    metrics.error(e.status);
    return reply.code(e.status).headers(e.headers).send(e.body());
  };
  app.setErrorHandler((err: FastifyError | ApiError, _req, reply) => fail(reply, toApiError(err, bodyLimit)));
  app.setNotFoundHandler((req, reply) => fail(reply, new ApiError(404, `no route ${req.method} ${req.url.split("?")[0].slice(0, 200)}`, { code: "not_found" })));

  app.addHook("onRequest", async (req, reply) => {
    metrics.request(req.routeOptions.url ?? "unmatched");
    if (req.routeOptions.url === "/health") return;
    if (closing) return fail(reply, shuttingDown());
    if (keyDigest && !authorized(req, keyDigest)) return fail(reply, new ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>", { code: "invalid_api_key" }));
  });

  app.get("/health", async (_req, reply) => {
    const body = { status: closing ? "shutting down" : "ok", slots_idle: pool.slots.length - pool.busy, slots_processing: pool.busy, queue: pool.queued };
    return reply.code(closing ? 503 : 200).send(body);
  });
  app.get("/metrics", async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
  const modelObject = { id: modelId, object: "model", created, owned_by: "specdec", meta: { backend: opened.backend, context_size: opened.target.contextSize, vocab_size: opened.target.vocabSize, slots: pool.slots.length, method: ctx.defaults.method } };
  app.get("/v1/models", async () => ({ object: "list", data: [modelObject] }));
  app.get("/v1/models/:id", async (req) => {
    const { id } = req.params as { id: string };
    if (id !== modelId) throw new ApiError(404, `no model ${id.slice(0, 200)}: this server serves ${modelId}`, { param: "model", code: "model_not_found" });
    return modelObject;
  });

  const responder: Responder = { pool, metrics, model: modelId, timeoutMs, bodyLimit };
  // The generation routes answer on the raw response: a stream is written event by event, and a
  // client that left must stop its generation, which the framework's reply does not track.
  const generationRoute = (toJob: (body: Record<string, unknown>, c: RequestContext) => Job) => async (req: FastifyRequest, reply: FastifyReply) => {
    const arrived = performance.now();
    const job = toJob(req.body as Record<string, unknown>, ctx);
    if (closing) throw shuttingDown(); // the shutdown began while this request was being read
    reply.hijack();
    const res = reply.raw;
    res.on("error", () => {}); // a write racing a client that left: its 'close' cancels the job
    const ac = new AbortController();
    const done = respond(responder, job, res, ac, arrived).catch((e: unknown) => {
      // A bug in writing the response must not take the server down: log it and drop the connection.
      process.stderr.write(`specdec serve: internal error: ${String((e as Error)?.message ?? e).split("\n")[0]}\n`);
      res.destroy();
    });
    running.set(ac, done);
    await done;
    running.delete(ac);
  };
  app.post("/v1/chat/completions", { schema: { body: chatBodySchema() } }, generationRoute(chatJob));
  app.post("/v1/completions", { schema: { body: completionBodySchema() } }, generationRoute(completionJob));

  const host = o.host ?? "127.0.0.1";
  try {
    await app.listen({ host, port: o.port ?? DEFAULT_PORT });
  } catch (e) {
    await app.close();
    throw new SpecdecError(`cannot listen on ${host}:${o.port ?? DEFAULT_PORT}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : (o.port ?? DEFAULT_PORT);
  let closed: Promise<void> | undefined;

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    model: modelId,
    backend: opened.backend,
    parallel: pool.slots.length,
    chatTemplate: ctx.template.source,
    close(graceMs = 10_000) {
      closed ??= (async () => {
        closing = true;
        pool.rejectWaiting(shuttingDown());
        await Promise.race([Promise.all(running.values()), new Promise((r) => setTimeout(r, graceMs).unref())]);
        for (const ac of running.keys()) ac.abort(shuttingDown());
        await Promise.all(running.values());
        await app.close();
        await pool.dispose();
        metrics.registry.clear();
      })();
      return closed;
    },
  };
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function authorized(req: FastifyRequest, keyDigest: Buffer): boolean {
  const header = req.headers.authorization;
  if (typeof header !== "string" || !header.startsWith("Bearer ")) return false;
  return timingSafeEqual(sha256(header.slice("Bearer ".length).trim()), keyDigest);
}
