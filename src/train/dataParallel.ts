// Data-parallel training of a LlamaModel over worker threads (`specdec train model --threads N`).
//
// The batch of B windows is cut into N contiguous shards of B / N windows. Shard 0 runs forward
// and backward in the main thread, shard s ≥ 1 in worker thread s (trainWorker.ts), each with its
// own LlamaPass (and its own WASM matmul memory). Memory shared by all threads:
//   - the parameter values, all in one SharedArrayBuffer (parameter j at a fixed offset, in
//     LlamaModel order): the main thread's model is built over them (LlamaModel's ParamFactory),
//     its AdamW updates them between steps and every worker reads them;
//   - the step's inputs and labels (B·T tokens), written by the main thread;
//   - one gradient buffer per worker, the same layout as the values, written by that worker.
// A step: the main thread posts "step" to the workers, runs shard 0, then waits (the trainer
// generator yields the promise, so the event loop runs: SIGINT, the workers' messages) for each
// worker's "done" with its loss. Then the shard gradients (each the mean over its rows) are summed
// into the main model's gradients in a fixed order, weighted by rows: g = g₀·w₀ + g₁·w₁ + …
// (double arithmetic, rounded once to f32), w_s = rows_s / rows, the full-batch mean gradient.
// Nothing depends on timing, so a run is bit-identical for the same seed and thread count (but
// not to another thread count: a matrix product over fewer rows sums in another order).
//
// Workers start with the run and are terminated when it ends (normally, on an error, on Ctrl-C),
// and are unref'd except while the main thread awaits them, so they never keep the process
// alive. An error in a worker (thrown, or the worker exiting) rejects the step as a one-line
// SpecdecError.

import { Worker } from "node:worker_threads";
import { SpecdecError } from "../errors.js";
import { TrainOptionError } from "./optionError.js";
import { LlamaModel, LlamaPass, distillLoss, type LlamaArch, type LossParts, type ParamFactory } from "./llamaModel.js";
import { zeroGrads, type Param } from "./optim.js";

const EMPTY = new Float32Array(0);

/** A batch of B windows cuts into `threads` equal shards. */
export function checkBatchSharding(B: number, threads: number): void {
  if (B % threads !== 0) throw new TrainOptionError((o) => `${o("batch")} ${B} is not divisible by ${o("threads")} ${threads}`);
}

/**
 * A ParamFactory laying parameters out one after another in `values` (and `grads` when given,
 * else own gradient arrays); AdamW moments own (moments) or empty (a worker has no optimizer).
 */
export function sharedParamFactory(values: Float32Array, grads: Float32Array | null, moments: boolean): ParamFactory {
  let off = 0;
  return (name, shape, decay): Param => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (off + n > values.length) throw new RangeError(`shared parameter memory too small for ${name}`);
    const p: Param = {
      name,
      shape,
      value: values.subarray(off, off + n),
      grad: grads ? grads.subarray(off, off + n) : new Float32Array(n),
      m: moments ? new Float32Array(n) : EMPTY,
      v: moments ? new Float32Array(n) : EMPTY,
      decay,
    };
    off += n;
    return p;
  };
}

/** Total parameter count of a model of this architecture. */
export function paramTotal(arch: LlamaArch): number {
  let total = 0;
  new LlamaModel(arch, (name, shape, decay) => {
    total += shape.reduce((a, b) => a * b, 1);
    return { name, shape, value: EMPTY, grad: EMPTY, m: EMPTY, v: EMPTY, decay };
  });
  return total;
}

/** What a worker is started with (workerData). */
export interface TrainWorkerInit {
  arch: LlamaArch;
  /** Windows in this worker's shard, and their length. */
  B: number;
  T: number;
  shard: number;
  values: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  inputs: SharedArrayBuffer;
  labels: SharedArrayBuffer;
}

/** Messages from a worker. */
export type TrainWorkerMessage = { type: "ready" } | { type: "done"; ce: number; agree: number; rows: number } | { type: "error"; message: string };

const noop = () => {};
const oneLine = (s: string) => s.split("\n")[0].trim();

/** One worker thread, with at most one request in flight. */
class Shard {
  private waiting: { resolve(m: TrainWorkerMessage): void; reject(e: Error): void } | null = null;
  private failure: Error | null = null;
  private closed = false;

  constructor(
    readonly worker: Worker,
    readonly index: number,
  ) {
    worker.unref();
    worker.on("message", (m: TrainWorkerMessage) => {
      if (m.type === "error") this.fail(`training thread ${index}: ${oneLine(m.message)}`);
      else {
        const w = this.waiting;
        this.waiting = null;
        this.worker.unref();
        w?.resolve(m);
      }
    });
    worker.on("error", (e: Error) => this.fail(`training thread ${index} failed: ${oneLine(e.message)}`));
    worker.on("exit", (code: number) => {
      if (!this.closed) this.fail(`training thread ${index} exited unexpectedly (code ${code})`);
    });
  }

  private fail(message: string): void {
    if (this.closed || this.failure) return;
    this.failure = new SpecdecError(message);
    const w = this.waiting;
    this.waiting = null;
    this.worker.unref();
    w?.reject(this.failure);
  }

  /** The worker's next message (posting `request` first, if given). */
  next(request?: "step"): Promise<TrainWorkerMessage> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiting) return Promise.reject(new SpecdecError(`training thread ${this.index} is busy`));
    const p = new Promise<TrainWorkerMessage>((resolve, reject) => (this.waiting = { resolve, reject }));
    this.worker.ref(); // keep the process alive while we wait for it
    if (request) this.worker.postMessage(request);
    return p;
  }

  close(): void {
    this.closed = true;
    this.waiting = null;
    this.worker.unref();
    this.worker.terminate().catch(noop);
  }
}

/** The main thread's side of data-parallel training (see the header). */
export class DataParallel {
  /** The main thread's model over the shared values; its gradients receive the summed gradient. */
  readonly model: LlamaModel;
  /** Shard 0's pass (B / threads windows). */
  readonly pass: LlamaPass;
  /** The step's tokens and labels (B·T), shared with the workers. */
  readonly inputs: Int32Array;
  readonly labels: Int32Array;
  readonly threads: number;
  private readonly shards: Shard[] = [];
  private readonly grads: Float32Array[] = []; // worker s's gradients (index s − 1)
  private readonly dlogits: Float32Array;
  private local: LossParts | null = null;
  private results: TrainWorkerMessage[] = [];
  private readonly started: Promise<void>;

  /** Copies `init`'s parameter values into shared memory and starts threads − 1 workers. */
  constructor(init: LlamaModel, B: number, T: number, threads: number) {
    if (!Number.isInteger(threads) || threads < 2) throw new SpecdecError(`data-parallel training needs 2 or more threads, got ${threads}`);
    checkBatchSharding(B, threads);
    this.threads = threads;
    const arch = init.arch, Bs = B / threads, total = paramTotal(arch);
    const values = new Float32Array(new SharedArrayBuffer(4 * total));
    this.model = new LlamaModel(arch, sharedParamFactory(values, null, true));
    for (let j = 0; j < init.params.length; j++) this.model.params[j].value.set(init.params[j].value);
    this.pass = new LlamaPass(this.model, Bs, T);
    this.dlogits = new Float32Array(Bs * T * arch.vocab);
    this.inputs = new Int32Array(new SharedArrayBuffer(4 * B * T));
    this.labels = new Int32Array(new SharedArrayBuffer(4 * B * T));
    try {
      for (let s = 1; s < threads; s++) {
        const grads = new SharedArrayBuffer(4 * total);
        this.grads.push(new Float32Array(grads));
        const workerData: TrainWorkerInit = { arch, B: Bs, T, shard: s, values: values.buffer as SharedArrayBuffer, grads, inputs: this.inputs.buffer as SharedArrayBuffer, labels: this.labels.buffer as SharedArrayBuffer };
        this.shards.push(new Shard(new Worker(new URL("./trainWorker.js", import.meta.url), { workerData }), s));
      }
    } catch (e) {
      this.close();
      throw new SpecdecError(`cannot start training threads: ${oneLine((e as Error).message)}`);
    }
    this.started = Promise.all(this.shards.map((s) => s.next())).then(noop);
    this.started.catch(noop); // awaited by ready(); never an unhandled rejection
  }

  /** Resolves once every worker has built its model and pass. */
  ready(): Promise<void> {
    return this.started;
  }

  /**
   * One step over the shared inputs and labels: starts the workers, runs shard 0 here, and
   * returns the promise of the workers' shards. Then call finish().
   */
  step(): Promise<void> {
    const p = Promise.all(this.shards.map((s) => s.next("step"))).then((r) => {
      this.results = r;
    });
    p.catch(noop);
    const N = this.pass.N, V = this.model.arch.vocab;
    this.local = distillLoss(this.pass.forward(this.inputs.subarray(0, N)), null, this.labels.subarray(0, N), 0, N, V, this.dlogits);
    zeroGrads(this.model.params);
    this.pass.backward(this.dlogits);
    return p;
  }

  /** After step()'s promise: the full-batch mean gradient in the model's grads, and the batch's loss. */
  finish(): LossParts {
    const local = this.local!;
    const parts = [{ ce: local.ce, agree: local.agree, rows: local.rows }];
    for (const r of this.results) {
      if (r.type !== "done") throw new SpecdecError(`training thread sent ${r.type} instead of a step's result`);
      parts.push(r);
    }
    let rows = 0;
    for (const p of parts) rows += p.rows;
    const w = parts.map((p) => (rows > 0 ? p.rows / rows : 0));
    let ce = 0, agree = 0;
    for (let s = 0; s < parts.length; s++) {
      ce += parts[s].ce * w[s];
      agree += parts[s].agree * w[s];
    }
    const G = this.grads, S = G.length;
    let off = 0;
    for (const p of this.model.params) {
      const g = p.grad, n = g.length;
      for (let i = 0; i < n; i++) {
        let x = g[i] * w[0];
        for (let s = 0; s < S; s++) x += G[s][off + i] * w[s + 1];
        g[i] = x;
      }
      off += n;
    }
    this.local = null;
    this.results = [];
    return { loss: ce, kl: 0, ce, agree, rows };
  }

  /** Terminate the workers (idempotent). */
  close(): void {
    for (const s of this.shards) s.close();
  }
}
