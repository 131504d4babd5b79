// What a server is started with (the CLI's flags, the library's startServer options).
import type { MethodOptionValues } from "../drafters/method.js";
import type { TargetSpec } from "../session.js";

export const DEFAULT_PORT = 8080;
export const DEFAULT_QUEUE = 64;
export const DEFAULT_TIMEOUT_MS = 600_000;
export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

export interface ServeOptions extends TargetSpec {
  /** The method requests use unless theirs says otherwise. Default: draft when methodOptions.draftModel is set, else prompt-lookup. */
  method?: string;
  /** Method options (by option name) for the methods that take them, files included. */
  methodOptions?: MethodOptionValues;
  /** A fixed draft length for every method; default: the cost model chooses each step's budget (a request's speculative.n_max fixes its own). */
  draftMax?: number;
  treeNodes?: number;
  /** "fixed": each method's default draft length instead of the cost model. Default "auto". */
  planner?: "auto" | "fixed";
  /** Default 127.0.0.1: other machines can reach the server only when this says so. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Slots: requests generating at the same time. Default 1. */
  parallel?: number;
  /** Most requests waiting for a slot; one more gets 503 with Retry-After. Default 64. */
  queue?: number;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Per-request limit (queueing included), in ms; 0 = none. Default 600,000. */
  timeoutMs?: number;
  /** Largest request body in bytes. Default 2 MiB. */
  bodyLimit?: number;
  /** A Jinja chat template file used instead of the model's own. */
  chatTemplateFile?: string;
}
