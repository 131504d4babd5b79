// How a case ended. The worker decides the first four and "wrong"; the parent decides "hang"
// and "memory" (it watches the clock and the worker's memory) and the crashes that kill the
// worker (a signal, a non-zero exit).

import { SpecdecError } from "./specdec.js";

export const OUTCOMES = ["parsed", "error", "crash", "hang", "memory", "wrong"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const OUTCOME_HEADINGS: Record<Outcome, string> = {
  parsed: "clean parse",
  error: "clean error",
  crash: "crash",
  hang: "hang",
  memory: "memory",
  wrong: "wrong",
};

export interface CaseVerdict {
  outcome: Outcome;
  /** One line: the error, the signal, the broken promise. */
  detail: string;
}

/** Longest message a clean error may have: a refusal is one short line, whatever the file held. */
export const MESSAGE_LIMIT = 1000;

/** Why `message` is not a fit one-line refusal, or undefined when it is. */
export function unfitMessage(message: string): string | undefined {
  if (message.length > MESSAGE_LIMIT) return `message of ${message.length} characters`;
  // C0 controls (newlines, escapes, NUL), DEL and C1 controls would break the line or the terminal.
  const bad = /[\u0000-\u001f\u007f-\u009f]/.exec(message);
  if (bad) return `message holds control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, "0")}`;
  return undefined;
}

/** One line describing a thrown value, at most `max` characters. */
export function describeThrown(e: unknown, max = 300): string {
  const err = e as Error;
  const name = err?.name ?? typeof e;
  const message = String(err?.message ?? e);
  const firstLine = message.split("\n")[0];
  const shown = JSON.stringify(firstLine.length > max ? firstLine.slice(0, max) + "…" : firstLine).slice(1, -1);
  // Where it was thrown: the first stack frame inside the project.
  const frame = err?.stack?.split("\n").find((l) => /\/(src|dist\/src)\//.test(l))?.trim().replace(/^at /, "");
  return `${name}${frame ? ` at ${frame.replace(/^.*\/(src\/)/, "$1").replace(/^\S+ \(|\)$/g, "")}` : ""}: ${shown}`;
}

/** The verdict on an exception a case threw: a SpecdecError with a fit message is a clean error. */
export function verdictOnThrown(e: unknown): CaseVerdict {
  if (e instanceof SpecdecError) {
    const unfit = unfitMessage(e.message);
    if (unfit) return { outcome: "crash", detail: `unfit SpecdecError (${unfit}): ${describeThrown(e, 120)}` };
    return { outcome: "error", detail: e.message };
  }
  return { outcome: "crash", detail: describeThrown(e) };
}
