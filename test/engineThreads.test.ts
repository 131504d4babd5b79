// Exactness of the built-in engine across batch shapes and thread counts, for every tensor type
// and both activation modes: a k-token pass gives bit-identical logits to k one-token passes, a
// tree-masked pass gives each branch the logits of evaluating it alone, and 1, 2 and 3 threads
// give the same bits. Then the thread pool's failure and shutdown behaviour.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuiltinTarget, type BuiltinOptions } from "../src/targets/builtin.js";
import { SpecdecError } from "../src/errors.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { quantizeRow, rowByteLength, SUPPORTED_TYPES } from "../src/engine/quant/index.js";
import { ThreadPool } from "../src/engine/wasm/threadPool.js";
import { kernelModule, MIN_SPLIT_WORK, sharedMemory, WasmMatrix } from "../src/engine/wasm/wasmMatrix.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";
import { defaultModels } from "../src/defaultModels.js";
import { gaussian, NAMES, rng } from "./support/quantFixtures.js";
import { randomModel } from "./support/randomModel.js";
import { SWIGLU_SPLIT_VECTORS } from "../src/engine/transformer.js";

const BIN = join(PROJECT_ROOT, "bin", "specdec.js");

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-threads-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const same = (x: Float32Array, y: Float32Array) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));

test("the products of these tests are big enough to be split between threads, and the 8-token SwiGLU gate too", () => {
  // dim 256, FFN 1024: every product of one token is at least 2^16 multiply-adds.
  assert.ok(256 * 256 >= MIN_SPLIT_WORK);
  assert.ok((8 * 1024) / 4 >= SWIGLU_SPLIT_VECTORS);
});

test("every tensor type, f32 and q8 activations: batched = single, tree = branches, 1 = 2 = 3 threads", async () => {
  const model = randomModel({ arch: "llama", layers: 1, seed: 21, ffn: 1024 });
  const seq = [1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52];
  const prefix = seq.slice(0, 6), k = 8;
  // A tree after the prefix: branches [a, b] and [c, d, e]; batch order a c b d e.
  const tree = [300, 301, 302, 303, 304], parents = [-1, -1, 0, 1, 3];
  for (const type of SUPPORTED_TYPES) {
    const path = join(dir, `model-${NAMES[type]}.gguf`);
    model.write(path, type);
    const modes: BuiltinOptions["activations"][] = type === GgmlType.F32 || type === GgmlType.F16 || type === GgmlType.BF16 ? ["f32"] : ["f32", "q8"];
    for (const activations of modes) {
      let first: Float32Array | undefined;
      for (const threads of [1, 2, 3]) {
        const at = `${NAMES[type]} activations ${activations} threads ${threads}`;
        const target = await BuiltinTarget.load(path, { contextSize: 64, threads, activations });
        const e = target.engine, V = target.vocabSize;
        e.forward(prefix, { logits: "none" });
        const batched = Float32Array.from(e.forward(seq.slice(6, 6 + k)).logits);
        e.truncate(prefix.length);
        const single = new Float32Array(k * V);
        for (let i = 0; i < k; i++) single.set(e.forward([seq[6 + i]]).logits, i * V);
        assert.ok(same(batched, single), `${at}: a ${k}-token pass differs from ${k} one-token passes`);
        e.truncate(prefix.length);
        const treeLogits = Float32Array.from(e.forward(tree, { parents }).logits);
        const branch = (tokens: number[]) => {
          e.truncate(prefix.length);
          return Float32Array.from(e.forward(tokens).logits);
        };
        const ab = branch([tree[0], tree[2]]), cde = branch([tree[1], tree[3], tree[4]]);
        const want = [ab.subarray(0, V), cde.subarray(0, V), ab.subarray(V), cde.subarray(V, 2 * V), cde.subarray(2 * V)];
        want.forEach((w, i) => assert.ok(same(treeLogits.subarray(i * V, (i + 1) * V), w), `${at}: tree position ${i} differs from its branch`));
        if (first) assert.ok(same(batched, first), `${at}: differs from 1 thread`);
        else first = batched;
        await target.dispose();
      }
    }
  }
});

test("WASM products: 1, 2 and 3 threads give the same bits for every type, batch 1 to 17", () => {
  const pool = ThreadPool.acquire(kernelModule()!, 3);
  try {
    const r = rng(9);
    for (const type of SUPPORTED_TYPES) {
      const rows = 70, cols = 512; // 18 panels, the last one padded
      const w = quantizeRow(type, Float32Array.from({ length: rows * cols }, () => gaussian(r)), rows * cols);
      const m = WasmMatrix.from(type, w, rows, cols, rowByteLength(type, cols))!;
      for (const batch of [1, 2, 3, 17]) {
        const X = Float32Array.from({ length: batch * cols }, () => gaussian(r));
        for (const q8 of [false, true]) {
          const outs = [1, 2, 3].map((threads) => {
            const out = new Float32Array(batch * rows);
            m.matMul(X, batch, out, { pool, threads, q8 });
            return out;
          });
          assert.ok(same(outs[0], outs[1]) && same(outs[0], outs[2]), `${NAMES[type]} batch ${batch} q8 ${q8}`);
        }
      }
    }
  } finally {
    pool.release();
  }
});

test("a worker thread's failure is one SpecdecError line in the main thread, and the pool keeps working", () => {
  const pool = ThreadPool.acquire(kernelModule()!, 2);
  try {
    const m = WasmMatrix.from(GgmlType.F32, new Uint8Array(4 * 32 * 4), 4, 32, 32 * 4)!;
    // 8 zero f32 panels of 64 chunks and their outputs, past the first 64 KiB of the arena.
    const nsb = 64, panelBytes = 512 * nsb;
    const region = m.arena.alloc(65536 + 8 * panelBytes + 8 * 16)!, W = region + 65536, out = W + 8 * panelBytes;
    const task = (memory: WebAssembly.Memory) => ({ memory, exports: m.arena.exports, fn: "mm_f32", args: [W, nsb, 0, 8, W, 128 * nsb, 1, out, 32, 0], range: 2, work: 8 });
    // Workers run the task on the memory it names, the main thread on its exports' memory: naming a
    // one-page memory makes every chunk a worker claims fail (out of bounds), and only those.
    const small = sharedMemory(1, 1);
    let failures = 0;
    for (const until = Date.now() + 10_000; Date.now() < until && failures === 0; ) {
      try {
        pool.run(task(small), 2);
      } catch (e) {
        assert.ok(e instanceof SpecdecError, `expected a SpecdecError, got ${String(e)}`);
        assert.match(e.message, /^a thread of the engine failed: .*out of bounds/);
        assert.ok(!e.message.includes("\n"));
        failures++;
      }
    }
    assert.ok(failures > 0, "no worker claimed a chunk in 10 s of tasks");
    pool.run(task(m.arena.memory), 2); // the same task on the right memory runs normally
  } finally {
    pool.release();
  }
});

test("threads 2: a process that never disposes its engine still exits", { timeout: 60_000 }, () => {
  const script = `
    import { BuiltinTarget } from ${JSON.stringify(join(PROJECT_ROOT, "dist", "src", "targets", "builtin.js"))};
    const t = await BuiltinTarget.load(${JSON.stringify(defaultModels().target)}, { threads: 2 });
    await t.evaluate([1, 2, 3, 4, 5, 6, 7, 8]);
    console.log("evaluated");`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.signal, null, `killed by ${r.signal}: the process hung at exit\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /evaluated/);
});

test("threads 2: Ctrl-C ends a CLI generation promptly, with its summary", { timeout: 60_000 }, async () => {
  // stories260K runs greedily from this prompt to 4000 tokens without an end-of-text (measured).
  const model = sharedFile("models", "stories260K.gguf");
  const child = spawn(process.execPath, [BIN, "generate", "--backend", "builtin", "--model", model, "--threads", "2", "--method", "none", "--context-size", "4096", "--max-tokens", "4000", "--prompt", "Once upon a time"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  // Wait for text to flow, then interrupt.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output within 30 s\n${stderr}`)), 30_000);
    child.stdout.once("data", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const sent = Date.now();
  child.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  const took = Date.now() - sent;
  assert.ok(took < 10_000, `exit took ${took} ms after SIGINT`);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /stop=abort\b/, `no summary line of an aborted generation:\n${stderr}`);
  assert.ok(stdout.length > 0);
});
