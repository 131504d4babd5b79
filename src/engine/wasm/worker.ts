// A worker thread of the engine's thread pool (threadPool.ts): it waits for tasks in the shared
// control block and runs its share of each on its own instances of the kernel module, one per
// shared memory. Everything it does is caught and reported through the control block.

import { receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { CTRL, ERROR_BYTES, share, SPIN } from "./threadPool.js";

type Kernel = (...args: number[]) => void;

const { module, ctrl: sab, index, port, seq } = workerData as { module: WebAssembly.Module; ctrl: SharedArrayBuffer; index: number; port: MessagePort; seq: number };
const ctrl = new Int32Array(sab, 0, CTRL.SIZE);
const ctrlF32 = new Float32Array(sab, 0, CTRL.SIZE);
const errorText = new Uint8Array(sab, 4 * CTRL.SIZE, ERROR_BYTES);
const names = WebAssembly.Module.exports(module).map((e) => e.name);
const instances = new Map<number, Record<string, Kernel>>(); // memory id -> exports

function exportsFor(id: number): Record<string, Kernel> {
  let ex = instances.get(id);
  while (!ex) {
    const msg = receiveMessageOnPort(port);
    if (!msg) throw new Error(`memory ${id} was never sent to this worker`);
    const { id: got, memory } = msg.message as { id: number; memory: WebAssembly.Memory };
    instances.set(got, new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, Kernel>);
    ex = instances.get(id);
  }
  return ex;
}

function runTask(): void {
  const n = ctrl[CTRL.THREADS];
  if (index >= n) return; // not taking part: only acknowledge
  const nArgs = ctrl[CTRL.NARGS], floats = ctrl[CTRL.FLOATS], range = ctrl[CTRL.RANGE], scratch = ctrl[CTRL.SCRATCH];
  const args: number[] = [];
  for (let i = 0; i < nArgs; i++) args.push(floats & (1 << i) ? ctrlF32[CTRL.ARGS + i] : ctrl[CTRL.ARGS + i]);
  [args[range], args[range + 1]] = share(ctrl[CTRL.WORK], index, n);
  if (scratch >= 0) args[scratch] += index * ctrl[CTRL.SCRATCH_STRIDE];
  exportsFor(ctrl[CTRL.MEM])[names[ctrl[CTRL.FN]]](...args);
}

let seen = seq; // the task number when this worker was made: any later task is its to run
Atomics.add(ctrl, CTRL.READY, 1);
Atomics.notify(ctrl, CTRL.READY);
for (;;) {
  let spins = 0;
  while (Atomics.load(ctrl, CTRL.SEQ) === seen) {
    if (++spins > SPIN) Atomics.wait(ctrl, CTRL.SEQ, seen, 1000);
  }
  seen = Atomics.load(ctrl, CTRL.SEQ);
  if (Atomics.load(ctrl, CTRL.STOP)) break;
  try {
    runTask();
  } catch (e) {
    const text = new TextEncoder().encode(String((e as Error)?.message ?? e).split("\n")[0]).subarray(0, ERROR_BYTES - 1);
    errorText.set(text);
    errorText[text.length] = 0;
    Atomics.store(ctrl, CTRL.ERROR, 1);
  }
  // Every worker acknowledges every task, taking part or not, so none can read the next one half-written.
  Atomics.add(ctrl, CTRL.DONE, 1);
  Atomics.notify(ctrl, CTRL.DONE);
}
