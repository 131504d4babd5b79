// Talking to a running `specdec serve` without the openai client: streamed requests read event
// by event (with the time of the first text), and a server started as a child process.

import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "./sharedData.js";

export interface StreamedCompletion {
  status: number;
  /** The text of all deltas, joined. */
  text: string;
  /** Every `data:` payload parsed (the "[DONE]" marker excluded). */
  events: Record<string, any>[];
  /** Whether the stream ended with `data: [DONE]`. */
  done: boolean;
  /** The chunk with a finish_reason, if any. */
  final?: Record<string, any>;
  /** An `{"error": ...}` event, if one came. */
  error?: { message: string; code: string | null };
  /** From sending the request to the first non-empty delta, and to the end, in ms. */
  firstTextMs?: number;
  totalMs: number;
}

/** POST a streaming request to `route` and read the whole stream (or until `signal` aborts, then what came so far). */
export async function streamRequest(url: string, route: string, body: object, o: { signal?: AbortSignal; onEvent?: (e: Record<string, any>) => void; headers?: Record<string, string> } = {}): Promise<StreamedCompletion> {
  const t0 = performance.now();
  const res = await fetch(url + route, { method: "POST", headers: { "content-type": "application/json", ...o.headers }, body: JSON.stringify({ ...body, stream: true }), signal: o.signal });
  const out: StreamedCompletion = { status: res.status, text: "", events: [], done: false, totalMs: 0 };
  if (!res.ok || !res.body) {
    out.error = ((await res.json()) as { error: StreamedCompletion["error"] }).error;
    out.totalMs = performance.now() - t0;
    return out;
  }
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(piece, { stream: true });
      let end: number;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!event.startsWith("data: ")) throw new Error(`not an SSE data event: ${JSON.stringify(event.slice(0, 80))}`);
        const data = event.slice("data: ".length);
        if (data === "[DONE]") {
          out.done = true;
          continue;
        }
        const e = JSON.parse(data) as Record<string, any>;
        out.events.push(e);
        if (e.error) out.error = e.error;
        const choice = e.choices?.[0];
        const delta: string | undefined = choice?.delta?.content ?? choice?.text;
        if (delta) {
          out.firstTextMs ??= performance.now() - t0;
          out.text += delta;
        }
        if (choice?.finish_reason) out.final = e;
        o.onEvent?.(e);
      }
    }
  } catch (e) {
    if (!o.signal?.aborted) throw e;
  }
  out.totalMs = performance.now() - t0;
  return out;
}

/** POST a request and return the status and the parsed body. */
export async function postJson(url: string, route: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url + route, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/** A metric's value from /metrics text (a sample line `name{labels} value`); 0 when absent. */
export function metricValue(text: string, sample: string): number {
  const line = text.split("\n").find((l) => l.startsWith(sample + " "));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** Start `specdec serve --port 0 ...args` and wait for its "listening on URL" line. */
export async function startChildServer(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildServer> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "serve", "--port", "0", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${stderr}`)), 60_000);
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", () => reject(new Error(`server exited before listening:\n${stderr}`)));
  });
  child.stdout!.resume();
  return { url, child, stderr: () => stderr, exited };
}
