// `specdec serve`: the OpenAI-compatible server, until SIGINT / SIGTERM.
import { Command, Option } from "commander";
import { methods } from "../methods.js";
import { DEFAULT_BODY_LIMIT, DEFAULT_PORT, DEFAULT_QUEUE, DEFAULT_TIMEOUT_MS } from "../server/options.js";
import { addTargetOptions, targetSpecFrom, type TargetCliOptions } from "./targetOptions.js";
import { addMethodOptions, givenMethodOptions } from "./methodOptions.js";
import { integer, real } from "./options.js";

export interface ServeCliOptions extends TargetCliOptions {
  method?: string;
  draftMax?: number;
  treeNodes?: number;
  planner: "auto" | "fixed";
  host: string;
  port: number;
  parallel: number;
  queue: number;
  apiKey?: string;
  ctxSize?: number;
  timeout: number;
  maxBodyBytes: number;
  chatTemplate?: string;
  shutdownGrace: number;
  [methodOption: string]: unknown;
}

/** The environment variable that gives the API key without putting it on the command line. */
export const API_KEY_ENV = "SPECDEC_API_KEY";

export function addServeCommand(cli: Command): void {
  const cmd = cli
    .command("serve")
    .description("serve the model over HTTP with the OpenAI API (chat and text completions), speculating on every request")
    .addOption(new Option("--method <name>", "default method of requests (a request's speculative.method overrides it); default: draft with --draft-model, else prompt-lookup").choices(methods().map((m) => m.name)))
    .option("--draft-max <k>", "a fixed draft length for every method (default: the cost model picks each step's budget; a request's speculative.n_max fixes its own)", integer(0, 256))
    .addOption(new Option("--planner <how>", "auto: the cost model; fixed: each method's default draft length").choices(["auto", "fixed"]).default("auto"))
    .option("--tree-nodes <n>", "default most guesses per step for tree methods", integer(1, 1024))
    .option("--host <address>", "address to listen on (only this machine unless you say otherwise)", "127.0.0.1")
    .option("--port <n>", "port (0 = any free port)", integer(0, 65535), DEFAULT_PORT)
    .option("--parallel <n>", "slots: requests generating at once, each with a KV cache of its own", integer(1, 256), 1)
    .option("--queue <n>", "most requests waiting for a slot; beyond it: 503 with Retry-After", integer(0, 1_000_000), DEFAULT_QUEUE)
    .option("--api-key <key>", `require Authorization: Bearer <key> on every route but /health (or set ${API_KEY_ENV})`)
    .option("--ctx-size <n>", "context size in tokens, per slot (the same as --context-size)", integer(16, 1 << 20))
    .option("--timeout <seconds>", "per-request limit, queueing included (0 = none)", real(0, 86_400), DEFAULT_TIMEOUT_MS / 1000)
    .option("--max-body-bytes <n>", "largest request body (larger: 413)", integer(1024, 1 << 30), DEFAULT_BODY_LIMIT)
    .option("--chat-template <file>", "a Jinja chat template to use instead of the model's own (tokenizer.chat_template)")
    .option("--shutdown-grace <seconds>", "on SIGINT / SIGTERM, how long running generations may finish before they are cancelled", real(0, 3600), 10);
  addMethodOptions(addTargetOptions(cmd, { model: "target model (GGUF), fixed for the server's life; default: the stories model in models/" })).action(runServe);
}

export async function runServe(o: ServeCliOptions): Promise<void> {
  // The HTTP framework loads only for this command.
  const { startServer } = await import("../server/server.js");
  const server = await startServer({
    ...targetSpecFrom({ ...o, contextSize: o.ctxSize ?? o.contextSize }),
    method: o.method,
    methodOptions: givenMethodOptions(o),
    draftMax: o.draftMax,
    treeNodes: o.treeNodes,
    planner: o.planner,
    host: o.host,
    port: o.port,
    parallel: o.parallel,
    queue: o.queue,
    apiKey: o.apiKey ?? (process.env[API_KEY_ENV] || undefined),
    timeoutMs: Math.round(o.timeout * 1000),
    bodyLimit: o.maxBodyBytes,
    chatTemplateFile: o.chatTemplate,
  });
  process.stderr.write(`specdec serve: listening on ${server.url} (model ${server.model}, backend ${server.backend}, ${server.parallel} slot${server.parallel > 1 ? "s" : ""}, chat template: ${server.chatTemplate})\n`);
  let stopping = false;
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  await new Promise<void>((resolve) => {
    onSignal = (signal) => {
      if (stopping) process.exit(1); // a second signal does not wait any longer
      stopping = true;
      process.stderr.write(`specdec serve: ${signal}: finishing running generations (up to ${o.shutdownGrace} s), then exiting\n`);
      server.close(o.shutdownGrace * 1000).then(resolve, (e) => {
        process.stderr.write(`specdec serve: error while closing: ${(e as Error).message}\n`);
        resolve();
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.stderr.write("specdec serve: stopped\n");
}
