// A worker thread of data-parallel training (dataParallel.ts): forward and backward of one shard
// of each step's batch. Started with a TrainWorkerInit (workerData); builds a LlamaModel over the
// shared parameter values (read only here) with its gradients in this worker's shared gradient
// buffer, and a LlamaPass of its B windows. Then for each "step" message: read its rows of the
// shared inputs and labels, forward, cross-entropy (distillLoss, no target), zero the gradients,
// backward, and answer { type: "done", ce, agree, rows }. Any error is answered as
// { type: "error", message }. It is terminated by the main thread.

import { parentPort, workerData } from "node:worker_threads";
import { sharedParamFactory, type TrainWorkerInit, type TrainWorkerMessage } from "./dataParallel.js";
import { LlamaModel, LlamaPass, distillLoss } from "./llamaModel.js";
import { zeroGrads } from "./optim.js";

const port = parentPort;
const post = (m: TrainWorkerMessage) => port!.postMessage(m);
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

if (port) {
  try {
    const d = workerData as TrainWorkerInit;
    const model = new LlamaModel(d.arch, sharedParamFactory(new Float32Array(d.values), new Float32Array(d.grads), false));
    const pass = new LlamaPass(model, d.B, d.T);
    const N = pass.N, V = d.arch.vocab;
    const inputs = new Int32Array(d.inputs, 4 * d.shard * N, N), labels = new Int32Array(d.labels, 4 * d.shard * N, N);
    const dlogits = new Float32Array(N * V);
    port.on("message", (m: unknown) => {
      if (m !== "step") return post({ type: "error", message: `unexpected message ${JSON.stringify(m)}` });
      try {
        const l = distillLoss(pass.forward(inputs), null, labels, 0, N, V, dlogits);
        zeroGrads(model.params);
        pass.backward(dlogits);
        post({ type: "done", ce: l.ce, agree: l.agree, rows: l.rows });
      } catch (e) {
        post({ type: "error", message: errorMessage(e) });
      }
    });
    post({ type: "ready" });
  } catch (e) {
    post({ type: "error", message: errorMessage(e) });
  }
}
