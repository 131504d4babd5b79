// What a fuzz target is: a way to build case `index` of a campaign (deterministically, from
// the campaign seed) and a way to run it inside a worker process.
//
// Extension point for `specdec serve` (issue 13): a target "serve" whose build() makes a
// malformed HTTP request (bad methods, paths, headers, chunked bodies, JSON with huge or
// hostile fields, early disconnects) and whose run() starts the server once per worker (kept
// in a module variable, on an ephemeral port), sends the raw bytes over node:net and judges
// the reply: a 4xx with a one-line error body is a clean error, a 5xx or a dropped server is a
// crash. Register it in targets/index.ts and give it a weight in campaign.ts; the pool, the
// limits, the classification and the reproducers need nothing new.

import type { CaseVerdict } from "../outcome.js";

export const TARGET_NAMES = ["reader", "tokenizer", "builtin", "llamacpp", "cli"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface BuiltCase {
  /** "<target>:<index>": with the campaign seed, all it takes to rebuild the case. */
  readonly id: string;
  readonly target: TargetName;
  /** The seed file the case mutates, if any. */
  readonly seedName?: string;
  /** The mutations applied and the case's other choices, one line each. */
  readonly what: readonly string[];
  /** The mutated file, written to the worker's scratch folder before run(). */
  readonly file?: Buffer;
  /** Target-specific parameters (texts, prompts, argv). */
  readonly params: Readonly<Record<string, unknown>>;
}

export interface FuzzTarget {
  readonly name: TargetName;
  /** Wall-clock limit of one case; past it the case is a hang and its worker is killed. */
  readonly timeLimitMs: number;
  build(seed: number, index: number): BuiltCase;
  /**
   * Run a case in this process. `file` is where c.file was written; `scratch` a folder of the
   * worker's own. Returns the verdict; a throw is judged by outcome.verdictOnThrown.
   */
  run(c: BuiltCase, file: string | undefined, scratch: string): Promise<CaseVerdict>;
}

export const caseId = (target: TargetName, index: number): string => `${target}:${index}`;
