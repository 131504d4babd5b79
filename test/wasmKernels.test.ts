import { after, test } from "node:test";
import assert from "node:assert/strict";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { dequantizeRow, f32ToF16, matMul, quantizeRow, rowByteLength, SUPPORTED_TYPES } from "../src/engine/quant/index.js";
import { kernelModule, kernelsFuseMultiplyAdd, useWasmKernels, WasmMatrix, wasmSupports } from "../src/engine/wasm/wasmMatrix.js";
import { SEGMENT_ELEMENTS } from "../src/engine/wasm/matmul.js";
import { ThreadPool } from "../src/engine/wasm/threadPool.js";
import { spawnSync } from "node:child_process";
import { layoutOf, panelBytes, superBlocks } from "../src/engine/wasm/repack.js";
import { BuiltinTarget } from "../src/targets/builtin.js";
import { sharedFile } from "./support/sharedData.js";
import { BLOCK, gaussian, NAMES, rng } from "./support/quantFixtures.js";


/**
 * |WASM - exact dot of the dequantized row| <= tol(cols) * sum |w_i x_i|. The WASM kernels round
 * each product to f32 (u = 2^-24) and add it to an f32x4 lane accumulator, one addition per
 * 4-element vector (cols / 4 of them), then add the 4 lanes in 2 more: every term passes through
 * at most cols / 4 + 3 roundings, so the error is below (cols / 4 + 3) u sum |w x| (the standard
 * bound for recursive summation), and the output is that f32 sum.
 */
const tol = (cols: number): number => (Math.ceil(cols / 4) + 3) * 2 ** -24;

function matrix(type: number, rows: number, cols: number, seed: number): { w: Uint8Array; deq: Float32Array } {
  const r = rng(seed);
  const src = Float32Array.from({ length: rows * cols }, () => gaussian(r));
  const w = quantizeRow(type, src, rows * cols);
  const deq = new Float32Array(rows * cols);
  dequantizeRow(type, w, 0, deq, rows * cols);
  return { w, deq };
}

test("WASM SIMD kernels are available for every supported type (Node 20 has wasm SIMD)", () => {
  for (const type of SUPPORTED_TYPES) assert.ok(wasmSupports(type), NAMES[type]);
});

test("WASM matMul agrees with the exact dot product and with the JS kernels", () => {
  for (const type of SUPPORTED_TYPES) {
    for (const cols of BLOCK[type] === 1 ? [512, 100, 172] : BLOCK[type] === 32 ? [512, 96] : [512]) {
      const rows = 9, batch = 5;
      const { w, deq } = matrix(type, rows, cols, 11 + type);
      const m = WasmMatrix.from(type, w, rows, cols, rowByteLength(type, cols))!;
      const r = rng(5);
      const X = Float32Array.from({ length: batch * cols }, () => gaussian(r));
      const got = new Float32Array(batch * rows), js = new Float32Array(batch * rows);
      m.matMul(X, batch, got);
      matMul(type, w, rows, cols, X, batch, js);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < rows; i++) {
          let ref = 0, mag = 0;
          for (let j = 0; j < cols; j++) {
            ref += deq[i * cols + j] * X[b * cols + j];
            mag += Math.abs(deq[i * cols + j] * X[b * cols + j]);
          }
          const bound = tol(cols) * mag;
          const g = got[b * rows + i];
          assert.ok(Math.abs(g - ref) <= bound, `${NAMES[type]} cols ${cols} item ${b} row ${i}: ${g} vs exact ${ref}`);
          assert.ok(Math.abs(g - js[b * rows + i]) <= 2 * bound, `${NAMES[type]}: WASM ${g} vs JS ${js[b * rows + i]}`);
        }
      }
    }
  }
});

test("WASM matMul is bit-identical per (row, item) for batch 1, 2, 3, 4, 5, 8, 16 and 20", () => {
  for (const type of SUPPORTED_TYPES) {
    for (const cols of BLOCK[type] === 1 ? [256, 100] : [256]) {
      const rows = 6;
      const { w } = matrix(type, rows, cols, 77 + type);
      const m = WasmMatrix.from(type, w, rows, cols, rowByteLength(type, cols))!;
      const r = rng(3);
      const X = Float32Array.from({ length: 20 * cols }, () => gaussian(r));
      const single = new Float32Array(20 * rows), one = new Float32Array(rows);
      for (let b = 0; b < 20; b++) {
        m.matMul(X.subarray(b * cols, (b + 1) * cols), 1, one);
        single.set(one, b * rows);
      }
      for (const batch of [2, 3, 4, 5, 8, 16, 20]) {
        const OUT = new Float32Array(batch * rows);
        m.matMul(X, batch, OUT);
        for (let k = 0; k < batch * rows; k++) assert.ok(Object.is(OUT[k], single[k]), `${NAMES[type]} cols ${cols} batch ${batch} item ${Math.floor(k / rows)} row ${k % rows}: ${OUT[k]} vs ${single[k]}`);
      }
    }
  }
});

// Lane 0 of a row adds 1 * -1, then (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: fused, -1 + that is exact
// (2^-11 + 2^-24); rounded first, the product is a tie that goes to 1 + 2^-11 (even), giving 2^-11.
function roundingProbe(m: WasmMatrix, batch: number): Float32Array {
  const a = 1 + 2 ** -12;
  const X = new Float32Array(8 * batch);
  for (let b = 0; b < batch; b++) X.set([-1, 0, 0, 0, a, 0, 0, 0], 8 * b);
  const out = new Float32Array(batch);
  m.matMul(X, batch, out);
  return out;
}

test("f32 products round once per multiply-add where the kernels fuse them, twice where not, alone and in a batch", () => {
  const a = 1 + 2 ** -12;
  const w = new Uint8Array(Float32Array.of(1, 0, 0, 0, a, 0, 0, 0).buffer);
  const m = WasmMatrix.from(GgmlType.F32, w, 1, 8, 32)!;
  const want = kernelsFuseMultiplyAdd() ? 2 ** -11 + 2 ** -24 : 2 ** -11;
  for (const batch of [1, 2, 3]) for (const got of roundingProbe(m, batch)) assert.equal(got, want, `batch ${batch}, fused ${kernelsFuseMultiplyAdd()}`);
  // SPECDEC_NO_FMA turns fusion off (a child process: the module is compiled once per process).
  const script = `import { kernelsFuseMultiplyAdd } from ${JSON.stringify(new URL("../src/engine/wasm/wasmMatrix.js", import.meta.url).href)}; console.log(kernelsFuseMultiplyAdd());`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, SPECDEC_NO_FMA: "1" } });
  assert.equal(r.stdout.trim(), "false", r.stderr);
});

test("long rows, decoded a segment at a time: the same bits as the f32 matrix of the dequantized weights (whole rows), for every type, batch and thread count", () => {
  const pool = ThreadPool.acquire(kernelModule()!, 3);
  try {
    for (const type of SUPPORTED_TYPES) {
      const rows = 9, cols = BLOCK[type] === 1 ? 4900 : 5120; // several segments of SEGMENT_ELEMENTS
      assert.ok(cols > 2 * SEGMENT_ELEMENTS);
      const { w, deq } = matrix(type, rows, cols, 300 + type);
      const m = WasmMatrix.from(type, w, rows, cols, rowByteLength(type, cols))!;
      const whole = WasmMatrix.from(GgmlType.F32, new Uint8Array(deq.buffer), rows, cols, 4 * cols)!;
      const r = rng(9);
      const X = Float32Array.from({ length: 5 * cols }, () => gaussian(r));
      for (const batch of [1, 2, 5]) {
        const want = new Float32Array(batch * rows);
        whole.matMul(X, batch, want);
        for (const threads of [1, 2, 3]) {
          const got = new Float32Array(batch * rows);
          m.matMul(X, batch, got, { pool, threads });
          for (let k = 0; k < batch * rows; k++) assert.ok(Object.is(got[k], want[k]), `${NAMES[type]} batch ${batch} threads ${threads} item ${Math.floor(k / rows)} row ${k % rows}: ${got[k]} vs ${want[k]}`);
        }
      }
    }
  } finally {
    pool.release();
  }
});

test("WASM weights decode to exactly dequantizeRow's values (one-hot inputs)", () => {
  for (const type of SUPPORTED_TYPES) {
    const rows = 3, cols = 256;
    const { w, deq } = matrix(type, rows, cols, 1000 + type);
    const m = WasmMatrix.from(type, w, rows, cols, rowByteLength(type, cols))!;
    const X = new Float32Array(cols * cols);
    for (let j = 0; j < cols; j++) X[j * cols + j] = 1;
    const OUT = new Float32Array(cols * rows); // (cols, rows) = Wᵀ
    m.matMul(X, cols, OUT);
    for (let j = 0; j < cols; j++) for (let i = 0; i < rows; i++) {
      // === : a zero weight may come back as +0 where dequantizeRow gives -0 (0 + -0 = +0).
      assert.ok(OUT[j * rows + i] === deq[i * cols + j], `${NAMES[type]} row ${i} element ${j}: ${OUT[j * rows + i]} vs ${deq[i * cols + j]}`);
    }
  }
});

test("WASM rows (the embedding lookup) read back exactly dequantizeRow's values, for every type", () => {
  for (const type of SUPPORTED_TYPES) {
    for (const [rows, cols] of [[7, 256], [5, 512]]) {
      const { w, deq } = matrix(type, rows, cols, 500 + type);
      const m = WasmMatrix.from(type, w, rows, cols, rowByteLength(type, cols))!;
      const out = new Float32Array(cols + 2);
      for (let r = 0; r < rows; r++) {
        m.readRow(r, out, 1);
        // === : a zero weight may come back as +0 where dequantizeRow gives -0 (d*q + m for Q4_0).
        for (let j = 0; j < cols; j++) assert.ok(out[1 + j] === deq[r * cols + j], `${NAMES[type]} row ${r} element ${j}: ${out[1 + j]} vs ${deq[r * cols + j]}`);
      }
    }
  }
});

test("WASM weights take at most 1.12x their ggml bytes (K-quants at most 1.06x): the panels keep sub-block scales compact", () => {
  for (const type of SUPPORTED_TYPES) {
    const rows = 8, cols = 1024;
    const l = layoutOf(type)!;
    const wasmBytes = 2 * panelBytes(l, superBlocks(l, cols)), ggmlBytes = rows * rowByteLength(type, cols);
    const limit = type === GgmlType.Q4_K || type === GgmlType.Q5_K || type === GgmlType.Q6_K ? 1.06 : type === GgmlType.Q4_1 || type === GgmlType.Q5_1 ? 1.2 : 1.12;
    assert.ok(wasmBytes <= limit * ggmlBytes, `${NAMES[type]}: ${wasmBytes} bytes in WASM for ${ggmlBytes} in the file`);
  }
});

test("WASM F16 decoding: subnormals, the largest half, infinities and NaN", () => {
  const specials = [0x0001, 0x03ff, 0x8001, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x3555, 0x8000];
  const cols = 32;
  for (const h of specials) {
    const w = new Uint8Array(2 * cols);
    w[10] = h & 0xff;
    w[11] = h >> 8; // element 5
    const m = WasmMatrix.from(GgmlType.F16, w, 1, cols, 2 * cols)!;
    const out = new Float32Array(1);
    m.matMul(new Float32Array(cols).fill(1), 1, out);
    const want = new Float32Array(1);
    dequantizeRow(GgmlType.F16, w.subarray(10, 12), 0, want, 1);
    assert.ok(Object.is(out[0], want[0]) || (h === 0x8000 && out[0] === 0), `f16 ${h.toString(16)}: ${out[0]} vs ${want[0]}`);
  }
  assert.equal(f32ToF16(1), 0x3c00);
});

// ---- the whole engine: WASM kernels and attention against the JS ones ----

after(() => useWasmKernels(true));

test("stories260K: the WASM engine and the JS engine give the same greedy tokens and logits within 1e-4", async () => {
  const path = sharedFile("models", "stories260K.gguf");
  const wasm = await BuiltinTarget.load(path, { contextSize: 128 });
  useWasmKernels(false);
  const js = await BuiltinTarget.load(path, { contextSize: 128 });
  useWasmKernels(true);
  assert.equal(wasm.kernels, kernelsFuseMultiplyAdd() ? "wasm-fma" : "wasm");
  assert.equal(js.kernels, "js");
  const prompt = wasm.tokenize("Once upon a time", true);
  let maxDiff = 0;
  const run = (t: BuiltinTarget): number[] => {
    const e = t.engine;
    e.truncate(0);
    let logits = e.forward(prompt, { logits: "last" }).logits;
    const out: number[] = [];
    for (let i = 0; i < 60; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      out.push(best);
      logits = e.forward([best], { logits: "last" }).logits;
      if (t === js) {
        const other = wasmLogits[i];
        for (let j = 0; j < logits.length; j++) maxDiff = Math.max(maxDiff, Math.abs(logits[j] - other[j]));
      } else wasmLogits.push(Float32Array.from(logits));
    }
    return out;
  };
  const wasmLogits: Float32Array[] = [];
  const a = run(wasm), b = run(js);
  assert.deepEqual(a, b);
  assert.ok(maxDiff < 1e-4, `max |logit difference| ${maxDiff}`);
  await wasm.dispose();
  await js.dispose();
});
