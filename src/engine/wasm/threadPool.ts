// Worker threads that run the engine's WASM kernels on the same shared memories as the main
// thread. A task is one kernel call whose work (panels of a product, (token, head) items of
// attention) is cut into contiguous chunks; the main thread and the workers claim chunks one at
// a time until none is left. Each output is in one chunk, computed wholly by whichever thread
// claimed it, in the kernel's fixed order — so results are bit-identical for any thread count
// and any schedule. And the main thread never waits for a worker that is not running: on a
// busy machine it simply claims the chunks itself.
//
// Dispatch goes through a small shared control block, not messages (a pass makes ~8 calls per
// layer, and a message round trip costs tens of microseconds). TASK holds the task number (high
// 17 bits) and the next unclaimed chunk (low 15): the main thread writes the task's fields, then
// TASK = seq << 15, and notifies; a claim is a compare-and-swap of TASK, and a thread reads the
// task's fields only once it holds a chunk (the task cannot end before that chunk is done). Workers spin on TASK for a while after each
// task (passes come in bursts), then sleep in Atomics.wait. Memories are registered once per
// worker, through its message port, read synchronously when a task first names them.
//
// Workers are unref'd (they never keep the process alive) and terminated when the last engine
// using the pool releases it. An error inside a worker is caught there, copied into the control
// block and raised in the main thread as one SpecdecError line.

import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { SpecdecError } from "../../errors.js";

// Control block layout (Int32 slots).
export const CTRL = {
  TASK: 0, // task number << 15 | next unclaimed chunk
  DONE: 1, // chunks finished
  FN: 2, // export index of the kernel
  MEM: 3, // memory id
  THREADS: 4, // threads that may take part (main included): workers 1 .. THREADS - 1
  ERROR: 5, // set by a thread that failed
  STOP: 6, // set when the pool closes
  WORK: 7, // work units
  RANGE: 8, // index of the (from, to) argument pair
  SCRATCH: 9, // index of the per-thread scratch argument, or -1
  SCRATCH_STRIDE: 10, // bytes of scratch per thread
  NARGS: 11,
  FLOATS: 12, // bit i: argument i is an f32
  READY: 13, // workers started
  CHUNKS: 14, // chunks the work is cut into
  ARGS: 16, // the arguments (i32 or f32 bits), up to 32
  SIZE: 48, // then ERROR_BYTES of error message (UTF-8, NUL-terminated)
} as const;
export const ERROR_BYTES = 256;
const MAX_ARGS = 32;

/** How long the first task waits for the workers to start. */
const START_TIMEOUT_MS = 20_000;

/** Iterations a waiting thread spins on the control block before sleeping. */
export const SPIN = 20000;

/** Chunks per taking-part thread: enough to balance threads that start late. */
const CHUNKS_PER_THREAD = 4;

/** The range of `work` units chunk c of n covers: [from, to). */
export function share(work: number, c: number, n: number): [number, number] {
  return [Math.floor((c * work) / n), Math.floor(((c + 1) * work) / n)];
}

/**
 * Claim and run chunks of task `seq` (as thread `index`) until none is left or the task is no
 * longer current. Returns after the last claim; errors are recorded in the control block.
 */
export function claimChunks(ctrl: Int32Array, ctrlF32: Float32Array, seq: number, index: number, kernel: (args: number[]) => void, errorText: Uint8Array): void {
  let args: number[] | undefined;
  for (;;) {
    const w = Atomics.load(ctrl, CTRL.TASK);
    if (w >>> SEQ_SHIFT !== seq) return;
    const c = w & CHUNK_MASK;
    if (c >= ctrl[CTRL.CHUNKS]) return;
    if (Atomics.compareExchange(ctrl, CTRL.TASK, w, w + 1) !== w) continue;
    // Chunk c is ours, so the task cannot end (and its fields cannot change) before we are done.
    const chunks = ctrl[CTRL.CHUNKS];
    if (!args) {
      const nArgs = ctrl[CTRL.NARGS], floats = ctrl[CTRL.FLOATS], scratch = ctrl[CTRL.SCRATCH];
      args = [];
      for (let i = 0; i < nArgs; i++) args.push(floats & (1 << i) ? ctrlF32[CTRL.ARGS + i] : ctrl[CTRL.ARGS + i]);
      if (scratch >= 0) args[scratch] += index * ctrl[CTRL.SCRATCH_STRIDE];
    }
    const range = ctrl[CTRL.RANGE];
    [args[range], args[range + 1]] = share(ctrl[CTRL.WORK], c, chunks);
    try {
      kernel(args);
    } catch (e) {
      const text = new TextEncoder().encode(String((e as Error)?.message ?? e).split("\n")[0]).subarray(0, ERROR_BYTES - 1);
      errorText.set(text);
      errorText[text.length] = 0;
      Atomics.store(ctrl, CTRL.ERROR, 1);
    }
    if (Atomics.add(ctrl, CTRL.DONE, 1) + 1 === chunks) Atomics.notify(ctrl, CTRL.DONE);
  }
}

/** TASK = seq << SEQ_SHIFT | next chunk. */
export const SEQ_SHIFT = 15;
const CHUNK_MASK = (1 << SEQ_SHIFT) - 1;
/** Task numbers wrap at 2^17. */
export const SEQ_MASK = 0x1ffff;

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
  private seq = 0; // the current task number
  private broken: string | undefined;
  private readonly errorText: Uint8Array; // (ERROR_BYTES) the failing thread's message

  private constructor(readonly module: WebAssembly.Module, workers: number) {
    const sab = new SharedArrayBuffer(4 * CTRL.SIZE + ERROR_BYTES);
    this.ctrl = new Int32Array(sab, 0, CTRL.SIZE);
    this.ctrlF32 = new Float32Array(sab, 0, CTRL.SIZE);
    this.errorText = new Uint8Array(sab, 4 * CTRL.SIZE, ERROR_BYTES);
    this.fnIndex = new Map(WebAssembly.Module.exports(module).map((e, i) => [e.name, i]));
    for (let i = 0; i < workers; i++) this.spawn(sab, i + 1);
  }

  private spawn(sab: SharedArrayBuffer, index: number): void {
    const { port1, port2 } = new MessageChannel();
    const w = new Worker(new URL("./worker.js", import.meta.url), {
      workerData: { module: this.module, ctrl: sab, index, port: port2 },
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
    Atomics.store(this.ctrl, CTRL.TASK, ((this.seq + 1) & SEQ_MASK) << SEQ_SHIFT);
    Atomics.notify(this.ctrl, CTRL.TASK);
    for (const w of this.workers) void w.terminate();
    for (const p of this.ports) p.close();
  }

  /** Threads available (the main thread and the workers). */
  get size(): number {
    return this.workers.length + 1;
  }

  /** Run task on up to `threads` threads (main included) and wait until all of it is done. */
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
    const chunks = Math.min(task.work, n * CHUNKS_PER_THREAD);
    c[CTRL.FN] = this.fnIndex.get(task.fn)!;
    c[CTRL.MEM] = mem;
    c[CTRL.THREADS] = n;
    c[CTRL.WORK] = task.work;
    c[CTRL.CHUNKS] = chunks;
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
    this.seq = (this.seq + 1) & SEQ_MASK;
    Atomics.store(c, CTRL.TASK, this.seq << SEQ_SHIFT);
    Atomics.notify(c, CTRL.TASK);
    // The main thread claims chunks too, then waits for the ones in workers' hands.
    const fn = task.exports[task.fn];
    claimChunks(c, this.ctrlF32, this.seq, 0, (a) => fn(...a), this.errorText);
    this.waitDone(chunks);
    if (Atomics.load(c, CTRL.ERROR)) {
      const bytes = this.errorText, end = bytes.indexOf(0);
      const text = Buffer.from(bytes.subarray(0, end < 0 ? ERROR_BYTES : end)).toString("utf8");
      Atomics.store(c, CTRL.ERROR, 0);
      throw new SpecdecError(`a thread of the engine failed: ${text}`);
    }
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

  private waitDone(chunks: number): void {
    const c = this.ctrl;
    for (let i = 0; i < SPIN; i++) if (Atomics.load(c, CTRL.DONE) >= chunks) return;
    for (;;) {
      const done = Atomics.load(c, CTRL.DONE);
      if (done >= chunks) return;
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
