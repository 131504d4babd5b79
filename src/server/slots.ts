// Slots: N independent sequences of one model (--parallel N), each a target with a KV cache of
// its own, and a bounded queue of requests waiting for one. A slot keeps the drafters it made
// (by method and options) for its next requests; all of them share the opened target's store.

import type { Drafter } from "../drafters/drafter.js";
import type { MethodOptionValues } from "../drafters/method.js";
import { DEFAULT_TREE_NODES } from "../decode/speculativeDecode.js";
import { methodNamed } from "../methods.js";
import { CostModelPlanner } from "../planner/costModelPlanner.js";
import type { PassCostTable } from "../planner/passCost.js";

/** The target's pass costs: plain passes, and passes that also return hidden states (Medusa, EAGLE). */
export interface PassCosts {
  readonly plain: PassCostTable;
  readonly hidden?: PassCostTable;
}
import { FixedPlanner, type Planner } from "../planner/planner.js";
import { forkTarget, openDrafter, readsHidden, type OpenedTarget } from "../session.js";
import type { Target } from "../targets/target.js";
import { ApiError } from "./apiError.js";

/** Drafters a slot keeps (least recently used dropped first): a draft model costs a load. */
const DRAFTERS_PER_SLOT = 4;

export class Slot {
  // key → drafter and its cost-model planner (what it learned carries over between requests), least recently used first
  private readonly drafters = new Map<string, { drafter: Drafter; planner?: Planner }>();

  constructor(
    readonly index: number,
    readonly target: Target,
    private readonly opened: OpenedTarget,
    /** The target's pass costs, for the cost model (shared by every slot: forks cost the same). */
    private readonly passCost: PassCosts | undefined,
  ) {}

  /** This slot's drafter for a method with these (resolved) options, made on first use. */
  async drafter(method: string, options: MethodOptionValues): Promise<Drafter> {
    return (await this.entry(method, options)).drafter;
  }

  /**
   * The budget for a job: a fixed draft length when the request (or the server) gave one,
   * else this slot's cost model for the method.
   */
  async planner(method: string, options: MethodOptionValues, draftMax: number | undefined, treeNodes: number | undefined): Promise<Planner> {
    const cost = this.passCost && (readsHidden(method) ? (this.passCost.hidden ?? this.passCost.plain) : this.passCost.plain);
    const fixed = (k: number) => new FixedPlanner(k, treeNodes ?? DEFAULT_TREE_NODES, this.target.threadCounts ? cost : undefined);
    if (draftMax !== undefined) return fixed(draftMax);
    if (!cost || methodNamed(method).defaultDraftMax === 0) return fixed(methodNamed(method).defaultDraftMax);
    const e = await this.entry(method, options);
    return (e.planner ??= new CostModelPlanner(cost));
  }

  private async entry(method: string, options: MethodOptionValues): Promise<{ drafter: Drafter; planner?: Planner }> {
    const key = method + " " + JSON.stringify(options);
    let e = this.drafters.get(key);
    if (e) {
      this.drafters.delete(key);
    } else {
      e = { drafter: await openDrafter({ ...this.opened, target: this.target }, method, options) };
      if (this.drafters.size >= DRAFTERS_PER_SLOT) {
        const [oldKey, old] = this.drafters.entries().next().value as [string, { drafter: Drafter }];
        this.drafters.delete(oldKey);
        await old.drafter.dispose?.();
      }
    }
    this.drafters.set(key, e);
    return e;
  }

  async dispose(): Promise<void> {
    for (const d of this.drafters.values()) await d.drafter.dispose?.();
    this.drafters.clear();
    await this.target.dispose();
  }
}

interface Waiter {
  resolve(slot: Slot): void;
  reject(reason: unknown): void;
  signal?: AbortSignal;
  onAbort(): void;
}

export class SlotPool {
  private readonly free: Slot[];
  private readonly waiting: Waiter[] = [];
  /** Called whenever the number of busy slots or waiting requests changes. */
  onChange: (busy: number, queued: number) => void = () => {};

  private constructor(
    readonly slots: readonly Slot[],
    /** Most requests waiting; one more gets 503. */
    readonly maxQueue: number,
  ) {
    this.free = [...slots];
  }

  /** `parallel` slots: the opened target and parallel - 1 forks of it. */
  static async open(opened: OpenedTarget, parallel: number, maxQueue: number, passCost?: PassCosts): Promise<SlotPool> {
    const slots = [new Slot(0, opened.target, opened, passCost)];
    try {
      for (let i = 1; i < parallel; i++) slots.push(new Slot(i, await forkTarget(opened), opened, passCost));
    } catch (e) {
      for (const s of slots.slice(1)) await s.dispose();
      throw e;
    }
    return new SlotPool(slots, maxQueue);
  }

  get busy(): number {
    return this.slots.length - this.free.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * A free slot, at once or when one frees up (first come, first served). Rejects with a 503
   * when the queue is full, and with the signal's reason when it aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const slot = this.free.pop();
    if (slot) {
      this.changed();
      return Promise.resolve(slot);
    }
    if (this.waiting.length >= this.maxQueue)
      return Promise.reject(new ApiError(503, `the server is busy: ${this.slots.length} slots generating and ${this.waiting.length} requests queued; retry later`, { code: "queue_full", headers: { "retry-after": "1" } }));
    return new Promise<Slot>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.remove(w);
          reject(signal!.reason);
        },
      };
      signal?.addEventListener("abort", w.onAbort, { once: true });
      this.waiting.push(w);
      this.changed();
    });
  }

  /** Give a slot back: the longest-waiting request gets it. */
  release(slot: Slot): void {
    const w = this.waiting.shift();
    if (w) {
      w.signal?.removeEventListener("abort", w.onAbort);
      w.resolve(slot);
    } else {
      this.free.push(slot);
    }
    this.changed();
  }

  /** Reject every waiting request (shutdown). */
  rejectWaiting(reason: unknown): void {
    for (const w of this.waiting.splice(0)) {
      w.signal?.removeEventListener("abort", w.onAbort);
      w.reject(reason);
    }
    this.changed();
  }

  async dispose(): Promise<void> {
    for (const s of this.slots) await s.dispose();
  }

  private remove(w: Waiter): void {
    const i = this.waiting.indexOf(w);
    if (i >= 0) this.waiting.splice(i, 1);
    this.changed();
  }

  private changed(): void {
    this.onChange(this.busy, this.waiting.length);
  }
}
