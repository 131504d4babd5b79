// Worker threads that run the engine's WASM kernels on the same shared memories as the main
// thread. A task is one kernel call whose work (panels of a product, heads of attention) is cut
// into contiguous ranges, one per thread: the main thread takes the first range itself, the
// workers the others, so every output is computed wholly by one thread, in the kernel's fixed
// order — results are bit-identical for any thread count.
//
// Dispatch goes through a small shared control block, not messages (a pass makes ~8 calls per
// layer, and a message round trip costs tens of microseconds): the main thread writes the task,
// bumps SEQ and notifies; workers spin on SEQ for a while after each task (passes come in
// bursts), then sleep in Atomics.wait. Memories are registered once per worker, through its
// message port, read synchronously when a task first names them.
//
// Workers are unref'd (they never keep the process alive) and terminated when the last engine
// using the pool releases it. An error inside a worker is caught there, copied into the control
// block and raised in the main thread as one SpecdecError line.

import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { SpecdecError } from "../../errors.js";

// Control block layout (Int32 slots).
export const CTRL = {
  SEQ: 0, // task number, bumped by the main thread
  DONE: 1, // workers done with the current task (all of them acknowledge it)
  FN: 2, // export index of the kernel
  MEM: 3, // memory id
  THREADS: 4, // threads taking part (main included)
  ERROR: 5, // set by a worker that failed
  STOP: 6, // set when the pool closes
  WORK: 7, // work units to split
  RANGE: 8, // index of the (from, to) argument pair
  SCRATCH: 9, // index of the per-thread scratch argument, or -1
  SCRATCH_STRIDE: 10, // bytes of scratch per thread
  NARGS: 11,
  FLOATS: 12, // bit i: argument i is an f32
  READY: 13, // workers started
  ARGS: 16, // the arguments (i32 or f32 bits), up to 32
  SIZE: 48, // then ERROR_BYTES of error message (UTF-8, NUL-terminated)
} as const;
export const ERROR_BYTES = 256;
const MAX_ARGS = 32;

/** How long the first task waits for the workers to start. */
const START_TIMEOUT_MS = 20_000;

/** Iterations a waiting thread spins on the control block before sleeping. */
export const SPIN = 20000;

/** The range of `work` units thread t of n takes: [from, to). */
export function share(work: number, t: number, n: number): [number, number] {
  return [Math.floor((t * work) / n), Math.floor(((t + 1) * work) / n)];
}

type Kernel = (...args: number[]) => void;

export interface Task {
  memory: WebAssembly.Memory;
  exports: Record<string, Kernel>;
  fn: string;
  /** Arguments; args[range], args[range + 1] are overwritten with each thread's [from, to). */
  args: number[];
  floats?: number; // bit mask of f32 arguments
  range: number;
  work: number;
  /** Per-thread scratch: args[scratch] + t * scratchStride. */
  scratch?: number;
  scratchStride?: number;
}

export class ThreadPool {
  private static instance: ThreadPool | undefined;
  private static users = 0;

  private readonly ctrl: Int32Array;
  private readonly ctrlF32: Float32Array;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly memIds = new WeakMap<WebAssembly.Memory, number>();
  private readonly registered = new Set<number>(); // memory ids the workers have been sent
  private readonly fnIndex: Map<string, number>;
  private nextMem = 0;
  private broken: string | undefined;

  private constructor(readonly module: WebAssembly.Module, workers: number) {
    const sab = new SharedArrayBuffer(4 * CTRL.SIZE + ERROR_BYTES);
    this.ctrl = new Int32Array(sab, 0, CTRL.SIZE);
    this.ctrlF32 = new Float32Array(sab, 0, CTRL.SIZE);
    this.fnIndex = new Map(WebAssembly.Module.exports(module).map((e, i) => [e.name, i]));
    for (let i = 0; i < workers; i++) this.spawn(sab, i + 1);
  }

  private spawn(sab: SharedArrayBuffer, index: number): void {
    const { port1, port2 } = new MessageChannel();
    const w = new Worker(new URL("./worker.js", import.meta.url), {
      workerData: { module: this.module, ctrl: sab, index, port: port2, seq: Atomics.load(this.ctrl, CTRL.SEQ) },
      transferList: [port2],
      execArgv: [], // the process's own flags (--input-type, --eval, ...) would not apply to the worker's file
    });
    w.unref();
    port1.unref();
    w.on("error", (e) => (this.broken = `a worker thread died: ${String(e?.message ?? e).split("\n")[0]}`));
    w.on("exit", (code) => {
      if (!Atomics.load(this.ctrl, CTRL.STOP)) this.broken ??= `a worker thread exited (code ${code})`;
    });
    this.workers.push(w);
    this.ports.push(port1);
  }

  /** The process-wide pool, with at least threads - 1 workers; pair with release(). */
  static acquire(module: WebAssembly.Module, threads: number): ThreadPool {
    let pool = ThreadPool.instance;
    if (pool && pool.workers.length < threads - 1 && ThreadPool.users === 0) {
      pool.close();
      pool = undefined;
    }
    if (!pool) pool = ThreadPool.instance = new ThreadPool(module, threads - 1);
    else if (pool.workers.length < threads - 1) pool.grow(threads - 1);
    ThreadPool.users++;
    return pool;
  }

  /** Done with the pool: the last release terminates the workers. */
  release(): void {
    if (ThreadPool.users > 0 && --ThreadPool.users === 0 && ThreadPool.instance === this) {
      this.close();
      ThreadPool.instance = undefined;
    }
  }

  private grow(n: number): void {
    const sab = this.ctrl.buffer as SharedArrayBuffer;
    while (this.workers.length < n) this.spawn(sab, this.workers.length + 1);
    this.registered.clear(); // every memory is sent again (to all workers) on its next use
  }

  private close(): void {
    Atomics.store(this.ctrl, CTRL.STOP, 1);
    Atomics.add(this.ctrl, CTRL.SEQ, 1);
    Atomics.notify(this.ctrl, CTRL.SEQ);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }

  /** Threads available (the main thread and the workers). */
  get size(): number {
    return this.workers.length + 1;
  }

  /** Run task on `threads` threads (main included) and wait for all of them. */
  run(task: Task, threads: number): void {
    if (this.broken) throw new SpecdecError(this.broken);
    const n = Math.min(threads, this.size, task.work);
    const { args, range } = task;
    if (n <= 1) {
      args[range] = 0;
      args[range + 1] = task.work;
      task.exports[task.fn](...args);
      return;
    }
    if (args.length > MAX_ARGS) throw new Error(`thread pool: ${args.length} arguments, at most ${MAX_ARGS}`);
    this.waitReady();
    const c = this.ctrl, mem = this.memoryId(task.memory);
    c[CTRL.FN] = this.fnIndex.get(task.fn)!;
    c[CTRL.MEM] = mem;
    c[CTRL.THREADS] = n;
    c[CTRL.WORK] = task.work;
    c[CTRL.RANGE] = range;
    c[CTRL.SCRATCH] = task.scratch ?? -1;
    c[CTRL.SCRATCH_STRIDE] = task.scratchStride ?? 0;
    c[CTRL.NARGS] = args.length;
    const floats = task.floats ?? 0;
    c[CTRL.FLOATS] = floats;
    for (let i = 0; i < args.length; i++) {
      if (floats & (1 << i)) this.ctrlF32[CTRL.ARGS + i] = args[i];
      else c[CTRL.ARGS + i] = args[i];
    }
    Atomics.store(c, CTRL.DONE, 0);
    Atomics.add(c, CTRL.SEQ, 1);
    Atomics.notify(c, CTRL.SEQ);
    // The main thread's own share.
    let failure: unknown;
    try {
      [args[range], args[range + 1]] = share(task.work, 0, n);
      task.exports[task.fn](...args);
    } catch (e) {
      failure = e;
    }
    this.waitDone(this.workers.length);
    if (Atomics.load(c, CTRL.ERROR)) {
      const bytes = new Uint8Array(c.buffer, 4 * CTRL.SIZE, ERROR_BYTES);
      const text = Buffer.from(bytes.subarray(0, bytes.indexOf(0) < 0 ? ERROR_BYTES : bytes.indexOf(0))).toString("utf8");
      Atomics.store(c, CTRL.ERROR, 0);
      throw new SpecdecError(`a worker thread failed: ${text}`);
    }
    if (failure !== undefined) throw failure;
  }

  // Workers start asynchronously; one that cannot start would never answer: wait for all of them, for a while.
  private waitReady(): void {
    const c = this.ctrl, deadline = Date.now() + START_TIMEOUT_MS;
    for (let ready = Atomics.load(c, CTRL.READY); ready < this.workers.length; ready = Atomics.load(c, CTRL.READY)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.broken = `the engine's worker threads did not start within ${START_TIMEOUT_MS / 1000} s`;
        throw new SpecdecError(this.broken);
      }
      Atomics.wait(c, CTRL.READY, ready, left);
    }
  }

  private waitDone(workers: number): void {
    const c = this.ctrl;
    for (let i = 0; i < SPIN; i++) if (Atomics.load(c, CTRL.DONE) >= workers) return;
    for (;;) {
      const done = Atomics.load(c, CTRL.DONE);
      if (done >= workers) return;
      if (this.broken) throw new SpecdecError(this.broken);
      Atomics.wait(c, CTRL.DONE, done, 1000);
    }
  }

  private memoryId(memory: WebAssembly.Memory): number {
    let id = this.memIds.get(memory);
    if (id === undefined) {
      id = this.nextMem++;
      this.memIds.set(memory, id);
    }
    if (!this.registered.has(id)) {
      for (const p of this.ports) p.postMessage({ id, memory });
      this.registered.add(id);
    }
    return id;
  }
}
