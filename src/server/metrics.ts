// The server's Prometheus metrics (GET /metrics), on a registry of its own so that several
// servers in one process (tests) keep separate counts. prom-client writes the text format.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GenerationStats } from "../decode/stats.js";

/** How a generation ended, as counted. */
export type Outcome = "stop" | "length" | "cancelled" | "timeout" | "shutdown" | "error";

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"route">;
  private readonly errors: Counter<"status">;
  private readonly generations: Counter<"method" | "outcome">;
  private readonly cancelled: Counter;
  private readonly promptTokens: Counter;
  private readonly generatedTokens: Counter;
  private readonly draftedTokens: Counter<"method">;
  private readonly acceptedTokens: Counter<"method">;
  private readonly tau: Histogram<"method">;
  private readonly timeToFirstToken: Histogram;
  readonly queueLength: Gauge;
  readonly slotsBusy: Gauge;

  constructor(slots: number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: "specdec_http_requests_total", help: "HTTP requests received, by route", labelNames: ["route"], registers });
    this.errors = new Counter({ name: "specdec_http_errors_total", help: "Error responses (4xx and 5xx, including errors sent inside a stream), by status", labelNames: ["status"], registers });
    this.generations = new Counter({ name: "specdec_generations_total", help: "Generations that ended, by method and how they ended", labelNames: ["method", "outcome"], registers });
    this.cancelled = new Counter({ name: "specdec_requests_cancelled_total", help: "Generations cancelled because the client went away (queued or running)", registers });
    this.promptTokens = new Counter({ name: "specdec_prompt_tokens_total", help: "Prompt tokens prefilled", registers });
    this.generatedTokens = new Counter({ name: "specdec_generated_tokens_total", help: "Tokens generated", registers });
    this.draftedTokens = new Counter({ name: "specdec_drafted_tokens_total", help: "Guesses verified, by method", labelNames: ["method"], registers });
    this.acceptedTokens = new Counter({ name: "specdec_accepted_tokens_total", help: "Guesses accepted, by method", labelNames: ["method"], registers });
    this.tau = new Histogram({ name: "specdec_tau", help: "Tokens per target pass of each generation (plain decoding = 1), by method", labelNames: ["method"], buckets: [1, 1.1, 1.25, 1.5, 2, 2.5, 3, 4, 6, 8], registers });
    this.timeToFirstToken = new Histogram({ name: "specdec_time_to_first_token_seconds", help: "From the request's arrival to its first generated token (queueing and prefill included)", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.queueLength = new Gauge({ name: "specdec_queue_length", help: "Requests waiting for a slot", registers });
    this.slotsBusy = new Gauge({ name: "specdec_slots_busy", help: "Slots generating", registers });
    new Gauge({ name: "specdec_slots", help: "Slots (--parallel)", registers }).set(slots);
  }

  request(route: string): void {
    this.requests.inc({ route });
  }

  error(status: number): void {
    this.errors.inc({ status: String(status) });
  }

  firstToken(seconds: number): void {
    this.timeToFirstToken.observe(seconds);
  }

  clientCancelled(): void {
    this.cancelled.inc();
  }

  /** A generation that ran (to its end or not): its tokens and, when it made passes, its tau. */
  generation(method: string, outcome: Outcome, stats: GenerationStats | undefined): void {
    this.generations.inc({ method, outcome });
    if (!stats) return;
    this.promptTokens.inc(stats.promptTokens);
    this.generatedTokens.inc(stats.generatedTokens);
    this.draftedTokens.inc({ method }, stats.draftedTokens);
    this.acceptedTokens.inc({ method }, stats.acceptedTokens);
    if (stats.targetCalls > 0) this.tau.observe({ method }, stats.tau);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
