// One job on one slot: wait for a slot, take its drafter, run the speculative loop step by
// step. Between steps control goes back to the event loop, so that the other slots and the
// HTTP server run while a long generation is under way.

import { speculativeStream, type GenerationResult, type StepEvent } from "../decode/speculativeDecode.js";
import type { Drafter } from "../drafters/drafter.js";
import { MinDepthDrafter } from "../drafters/minDepth.js";
import { SpecdecError } from "../errors.js";
import { verifierFor } from "../verifiers/acceptance.js";
import { ApiError } from "./apiError.js";
import type { Job } from "./requests.js";
import type { Slot, SlotPool } from "./slots.js";

export interface JobHooks {
  /** The job has its slot and drafter: the response may begin. */
  started(): void;
  /** Each step of the loop, in order; awaited (a slow client holds its own generation back). */
  step(event: StepEvent): Promise<void> | void;
}

/** The slot's drafter for the job; a method's own checks across its options (made only here) are the request's fault. */
async function drafterOf(slot: Slot, job: Job): Promise<Drafter> {
  try {
    return await slot.drafter(job.method, job.methodOptions);
  } catch (e) {
    if (e instanceof SpecdecError) throw new ApiError(400, e.message, { param: "speculative" });
    throw e;
  }
}

/** Every macrotask queued so far (timers, I/O, other slots) runs before this resolves. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Run a job to its end. An abort of `signal` while queued rejects with its reason; while
 * generating it ends the loop at the next step (stopReason "abort"), and the slot is free at once.
 */
export async function runJob(pool: SlotPool, job: Job, signal: AbortSignal, hooks: JobHooks): Promise<GenerationResult> {
  const slot = await pool.acquire(signal);
  try {
    const own = await drafterOf(slot, job);
    const drafter = job.draftMin > 0 ? new MinDepthDrafter(own, job.draftMin) : own;
    const planner = await slot.planner(job.method, job.methodOptions, job.draftMax, job.treeNodes);
    signal.throwIfAborted();
    hooks.started();
    const stream = speculativeStream(slot.target, drafter, {
      prompt: job.prompt,
      maxTokens: job.maxTokens,
      sampling: job.sampling,
      planner,
      stop: job.stop,
      verifier: verifierFor(job.acceptance),
      signal,
    });
    while (true) {
      const r = await stream.next();
      if (r.done) return r.value;
      await hooks.step(r.value);
      await yieldToEventLoop();
    }
  } finally {
    pool.release(slot);
  }
}
