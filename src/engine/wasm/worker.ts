// A worker thread of the engine's thread pool (threadPool.ts): it waits for tasks in the shared
// control block and claims chunks of each, running them on its own instances of the kernel
// module, one per shared memory. Everything it does is caught and reported through the control block.

import { receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { claimChunks, CTRL, ERROR_BYTES, SEQ_SHIFT, SPIN } from "./threadPool.js";

type Kernel = (...args: number[]) => void;

const { module, ctrl: sab, index, port } = workerData as { module: WebAssembly.Module; ctrl: SharedArrayBuffer; index: number; port: MessagePort };
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

// The kernel of the current task (looked up once a chunk is claimed: the fields are then stable).
const kernel = (args: number[]): void => exportsFor(ctrl[CTRL.MEM])[names[ctrl[CTRL.FN]]](...args);

Atomics.add(ctrl, CTRL.READY, 1);
Atomics.notify(ctrl, CTRL.READY);
let seen = Atomics.load(ctrl, CTRL.TASK) >>> SEQ_SHIFT; // tasks before this worker started are done or others' to finish
for (;;) {
  let w = Atomics.load(ctrl, CTRL.TASK);
  for (let spins = 0; w >>> SEQ_SHIFT === seen; w = Atomics.load(ctrl, CTRL.TASK)) {
    if (++spins > SPIN) Atomics.wait(ctrl, CTRL.TASK, w, 1000);
  }
  if (Atomics.load(ctrl, CTRL.STOP)) break;
  seen = w >>> SEQ_SHIFT;
  if (index < ctrl[CTRL.THREADS]) claimChunks(ctrl, ctrlF32, seen, index, kernel, errorText);
}
