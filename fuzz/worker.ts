// A fuzz worker: a long-lived child process (child_process.fork) that builds and runs cases
// one at a time as the parent asks. It builds each case itself from (seed, target, index), so
// only a few numbers cross the IPC channel. A case that kills this process (a native crash, an
// out-of-memory abort) or outlives its time limit is judged by the parent, which then forks a
// fresh worker.
//
// Protocol: parent -> worker {type: "run", seed, target, index}
//           worker -> parent {type: "ready"} once, then per case
//                    {type: "started", id, what, seedName} and
//                    {type: "result", id, verdict, ms}

import { mkdirSync, rmSync } from "node:fs";
import type { CaseVerdict } from "./outcome.js";
import { runCase } from "./runCase.js";
import { TARGETS } from "./targets/registry.js";
import type { TargetName } from "./targets/target.js";

export interface RunRequest {
  type: "run";
  seed: number;
  target: TargetName;
  index: number;
}

export type WorkerMessage =
  | { type: "ready" }
  | { type: "started"; id: string; what: readonly string[]; seedName?: string }
  | { type: "result"; id: string; verdict: CaseVerdict; ms: number };

function main(): void {
  const scratch = process.env.SPECDEC_FUZZ_SCRATCH;
  if (!scratch || !process.send) throw new Error("fuzz worker: start it with child_process.fork and SPECDEC_FUZZ_SCRATCH");
  mkdirSync(scratch, { recursive: true });
  const send = (m: WorkerMessage) => process.send!(m);
  process.on("message", async (m: RunRequest) => {
    if (m.type !== "run") return;
    const t0 = performance.now();
    const c = TARGETS[m.target].build(m.seed, m.index);
    send({ type: "started", id: c.id, what: c.what, seedName: c.seedName });
    const verdict = await runCase(c, scratch);
    send({ type: "result", id: c.id, verdict, ms: performance.now() - t0 });
  });
  process.on("disconnect", () => {
    rmSync(scratch, { recursive: true, force: true });
    process.exit(0);
  });
  send({ type: "ready" });
}

main();
