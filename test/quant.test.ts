import { test } from "node:test";
import assert from "node:assert/strict";
import { SpecdecError } from "../src/errors.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import {
  F16_TO_F32, bf16ToF32, dequantizeRow, dotRow, f32ToBf16, f32ToF16, matMul, matVec, quantizeRow, rowByteLength, SUPPORTED_TYPES,
} from "../src/engine/quant/index.js";
import { BLOCK, gaussian, NAMES, rng } from "./support/quantFixtures.js";


/**
 * Quantize -> dequantize error bounds: max |x - deq(q(x))| over a block, as a fraction of the
 * block's largest |x| (the 256-element super-block for K-quants). Derived from the formats:
 * Q8_0 d = amax/127 -> half a step + f16 rounding of d; Q4_0/Q5_0 one full step (the value
 * opposite in sign to the largest clamps at +7 / +15); Q4_1/Q5_1 half of (max-min)/15 or /31;
 * K-quants half a step plus the 6-bit (Q4_K/Q5_K) or 8-bit (Q6_K) quantization of the
 * sub-block scales and mins. F16/BF16 are relative per element (2^-11, 2^-8); F32 is exact.
 */
const BLOCK_ERROR: Record<number, number> = { 8: 0.0045, 2: 0.13, 3: 0.07, 6: 0.066, 7: 0.035, 12: 0.08, 13: 0.045, 14: 0.04 };
const ELEMENT_ERROR: Record<number, number> = { 0: 0, 1: 2 ** -11, 30: 2 ** -8 };

/** |dotRow - dot(dequantized row, x)| <= DOT_TOL * sum |w_i x_i|: both are sums of the same products, in double vs from f32 values. */
const DOT_TOL = 1e-6;

const N = 1024; // four K super-blocks, 32 small blocks

// Rows with different character: normal, all positive, an outlier, zeros, a constant, large.
function testRows(): Float32Array[] {
  const r = rng(42);
  const rows: Float32Array[] = [];
  rows.push(Float32Array.from({ length: N }, () => gaussian(r)));
  rows.push(Float32Array.from({ length: N }, () => r()));
  rows.push(Float32Array.from({ length: N }, (_, i) => (i % 97 === 5 ? 50 : gaussian(r) * 0.1)));
  rows.push(new Float32Array(N));
  rows.push(new Float32Array(N).fill(3.5));
  rows.push(Float32Array.from({ length: N }, () => (r() - 0.3) * 200));
  return rows;
}

test("f16 and bf16 conversions", () => {
  for (let h = 0; h < 65536; h++) {
    const v = F16_TO_F32[h];
    if (Number.isNaN(v)) assert.ok(Number.isNaN(F16_TO_F32[f32ToF16(v)]));
    else assert.equal(f32ToF16(v), h, `f16 ${h.toString(16)}`);
    const b = bf16ToF32(h);
    if (Number.isNaN(b)) assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(b))));
    else assert.equal(f32ToBf16(b), h, `bf16 ${h.toString(16)}`);
  }
  // Known values and round-to-nearest-even at midpoints.
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-2), 0xc000);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // rounds up to infinity
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(f32ToF16(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(f32ToF16(2 ** -25), 0x0000); // tie -> even (zero)
  assert.equal(f32ToF16(1.5 * 2 ** -25), 0x0001);
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
});

test("every type: quantize -> dequantize stays within its error bound", () => {
  for (const type of SUPPORTED_TYPES) {
    const bs = Math.max(32, BLOCK[type]);
    for (const [ri, x] of testRows().entries()) {
      const q = quantizeRow(type, x, N);
      assert.equal(q.length, rowByteLength(type, N));
      const d = new Float32Array(N + 3);
      dequantizeRow(type, q, 0, d, N, 3);
      for (let b = 0; b < N; b += bs) {
        let amax = 0, maxErr = 0;
        for (let i = b; i < b + bs; i++) {
          amax = Math.max(amax, Math.abs(x[i]));
          const err = Math.abs(d[3 + i] - x[i]);
          maxErr = Math.max(maxErr, err);
          if (type in ELEMENT_ERROR) assert.ok(err <= ELEMENT_ERROR[type] * Math.abs(x[i]), `${NAMES[type]} row ${ri} element ${i}: ${x[i]} -> ${d[3 + i]}`);
        }
        if (type in BLOCK_ERROR) assert.ok(maxErr <= BLOCK_ERROR[type] * amax, `${NAMES[type]} row ${ri} block at ${b}: error ${maxErr} > ${BLOCK_ERROR[type]} * ${amax}`);
      }
    }
  }
});

test("every type: dotRow equals the dot product of the dequantized row", () => {
  const r = rng(7);
  const x = Float32Array.from({ length: N + 5 }, () => gaussian(r));
  for (const type of SUPPORTED_TYPES) {
    for (const row of testRows()) {
      const q = quantizeRow(type, row, N);
      // Put the row at an odd offset inside a bigger buffer: kernels must honour byte offsets.
      const buf = new Uint8Array(q.length + 7);
      buf.set(q, 7);
      const d = new Float32Array(N);
      dequantizeRow(type, buf, 7, d, N);
      let ref = 0, mag = 0;
      for (let i = 0; i < N; i++) {
        ref += d[i] * x[5 + i];
        mag += Math.abs(d[i] * x[5 + i]);
      }
      const got = dotRow(type, buf, 7, x, 5, N);
      assert.ok(Math.abs(got - ref) <= DOT_TOL * mag + 1e-30, `${NAMES[type]}: dotRow ${got} vs ${ref}`);
    }
  }
});

test("every type: matMul for batch 1, 3, 8 and 20 is bit-identical per row to matVec and dotRow", () => {
  const r = rng(99);
  const rows = 7;
  for (const type of SUPPORTED_TYPES) {
    // F32/F16/BF16 also get a row length that is not a multiple of 32 (the tail chain).
    for (const cols of BLOCK[type] === 1 ? [512, 100] : [512]) {
      const rb = rowByteLength(type, cols);
      const w = new Uint8Array(rows * rb);
      for (let i = 0; i < rows; i++) w.set(quantizeRow(type, Float32Array.from({ length: cols }, () => gaussian(r)), cols), i * rb);
      for (const batch of [1, 3, 8, 20]) {
        const X = Float32Array.from({ length: batch * cols }, () => gaussian(r));
        const OUT = new Float32Array(batch * rows);
        matMul(type, w, rows, cols, X, batch, OUT);
        const out = new Float32Array(rows);
        for (let b = 0; b < batch; b++) {
          const x = X.subarray(b * cols, (b + 1) * cols);
          matVec(type, w, rows, cols, x, out);
          for (let i = 0; i < rows; i++) {
            assert.ok(Object.is(OUT[b * rows + i], out[i]), `${NAMES[type]} cols ${cols} batch ${batch} item ${b} row ${i}: ${OUT[b * rows + i]} vs ${out[i]}`);
            assert.ok(Object.is(Math.fround(dotRow(type, w, i * rb, X, b * cols, cols)), out[i]));
          }
        }
      }
    }
  }
});

// ---- layouts built by hand from ggml-common.h, independent of quantizeRow ----

function f16Bytes(h: number): number[] {
  return [h & 0xff, h >> 8];
}

test("Q8_0 layout by hand: f16 d then 32 signed bytes", () => {
  // d = 0.5 (f16 0x3800), q_j = j - 16.
  const block = [...f16Bytes(0x3800), ...Array.from({ length: 32 }, (_, j) => (j - 16) & 0xff)];
  const out = new Float32Array(32);
  dequantizeRow(GgmlType.Q8_0, Uint8Array.from(block), 0, out, 32);
  assert.deepEqual([...out], Array.from({ length: 32 }, (_, j) => 0.5 * (j - 16)));
});

test("Q4_0 layout by hand: byte j holds element j (low nibble) and j + 16 (high nibble), offset 8", () => {
  // d = 2 (f16 0x4000); low nibble j, high nibble 15 - j.
  const block = [...f16Bytes(0x4000), ...Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4))];
  const out = new Float32Array(32);
  dequantizeRow(GgmlType.Q4_0, Uint8Array.from(block), 0, out, 32);
  const want = new Array(32);
  for (let j = 0; j < 16; j++) {
    want[j] = 2 * (j - 8);
    want[j + 16] = 2 * (15 - j - 8);
  }
  assert.deepEqual([...out], want);
});

test("Q5_0 layout by hand: bit j of the u32 qh is the fifth bit of element j", () => {
  const qh = 0xa5c3_0f11; // arbitrary
  const block = [...f16Bytes(0x3c00), qh & 0xff, (qh >>> 8) & 0xff, (qh >>> 16) & 0xff, qh >>> 24, ...Array.from({ length: 16 }, (_, j) => ((j * 5) & 15) | (((j * 3) & 15) << 4))];
  const out = new Float32Array(32);
  dequantizeRow(GgmlType.Q5_0, Uint8Array.from(block), 0, out, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(out[j], (((j * 5) & 15) | (((qh >>> j) & 1) << 4)) - 16);
    assert.equal(out[j + 16], (((j * 3) & 15) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
  }
});

test("Q4_K layout by hand: d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles", () => {
  const sc = [1, 2, 3, 4, 33, 40, 50, 63];
  const mn = [0, 5, 10, 15, 20, 30, 45, 61];
  // Sub-blocks 0-3: scale in bytes 0-3, min in bytes 4-7 (low 6 bits). Sub-blocks 4-7: low 4 bits
  // of scale and min in bytes 8-11, their high 2 bits in the top bits of bytes 0-3 and 4-7.
  const scales = new Array(12).fill(0);
  for (let j = 0; j < 4; j++) {
    scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    scales[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
    scales[j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
  }
  const q = (e: number): number => (e * 7 + (e >> 5)) & 15;
  // Chunk k of 64 elements: byte 32k + l holds element 64k + l (low) and 64k + 32 + l (high).
  const qs = new Array(128);
  for (let k = 0; k < 4; k++) for (let l = 0; l < 32; l++) qs[32 * k + l] = q(64 * k + l) | (q(64 * k + 32 + l) << 4);
  const block = Uint8Array.from([...f16Bytes(0x3c00), ...f16Bytes(0x3800), ...scales, ...qs]); // d = 1, dmin = 0.5
  assert.equal(block.length, 144);
  const out = new Float32Array(256);
  dequantizeRow(GgmlType.Q4_K, block, 0, out, 256);
  for (let e = 0; e < 256; e++) assert.equal(out[e], sc[e >> 5] * q(e) - 0.5 * mn[e >> 5], `element ${e}`);
  // And the dot kernel reads the same layout.
  const x = Float32Array.from({ length: 256 }, (_, i) => ((i % 13) - 6) / 4);
  let ref = 0;
  for (let e = 0; e < 256; e++) ref += out[e] * x[e];
  assert.equal(dotRow(GgmlType.Q4_K, block, 0, x, 0, 256), ref);
});

test("Q6_K layout by hand: ql[128], qh[64], i8 scales[16], f16 d at the end", () => {
  const sc = Array.from({ length: 16 }, (_, j) => (j % 2 ? -1 : 1) * (j + 1));
  const q = (e: number): number => (e * 11 + 3) & 63; // 6-bit level, value q - 32
  const ql = new Array(128).fill(0), qh = new Array(64).fill(0);
  for (let n = 0; n < 2; n++) {
    for (let l = 0; l < 32; l++) {
      const [a, b, c, d] = [q(128 * n + l), q(128 * n + l + 32), q(128 * n + l + 64), q(128 * n + l + 96)];
      ql[64 * n + l] = (a & 15) | ((c & 15) << 4);
      ql[64 * n + l + 32] = (b & 15) | ((d & 15) << 4);
      qh[32 * n + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6);
    }
  }
  const block = Uint8Array.from([...ql, ...qh, ...sc.map((s) => s & 0xff), ...f16Bytes(0x3400)]); // d = 0.25
  assert.equal(block.length, 210);
  const out = new Float32Array(256);
  dequantizeRow(GgmlType.Q6_K, block, 0, out, 256);
  for (let e = 0; e < 256; e++) assert.equal(out[e], 0.25 * sc[e >> 4] * (q(e) - 32), `element ${e}`);
});

test("kernels reject unsupported types and bad shapes with one-line errors", () => {
  const oneLine = (re: RegExp) => (e: unknown) => e instanceof SpecdecError && re.test(e.message) && !e.message.includes("\n");
  assert.throws(() => dotRow(GgmlType.Q2_K, new Uint8Array(84), 0, new Float32Array(256), 0, 256), oneLine(/Q2_K is not supported/));
  assert.throws(() => quantizeRow(GgmlType.Q4_K, new Float32Array(100), 100), oneLine(/multiple of 256/));
  assert.throws(() => matVec(GgmlType.Q8_0, new Uint8Array(34), 2, 32, new Float32Array(32), new Float32Array(2)), oneLine(/needs bytes 0..68/));
  assert.throws(() => matMul(GgmlType.F32, new Uint8Array(128), 1, 32, new Float32Array(32), 2, new Float32Array(2)), oneLine(/matMul X/));
});

// ---- end to end: llama.cpp reads our layouts (and our writer's files) the same way we do ----

test("llama.cpp agrees: a model with every type vs the same model with our dequantized weights in F32", async (t) => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const { openGguf } = await import("../src/gguf/reader.js");
  const { writeGguf, kv } = await import("../src/gguf/writer.js");
  const { sharedFile } = await import("./support/sharedData.js");

  // A 2-layer llama (n_embd 256 so K-quant rows fit) with the stories260K tokenizer (512 tokens).
  const E = 256, F = 512, V = 512, H = 4;
  const src = openGguf(sharedFile("models", "stories260K.gguf"));
  const tokenizer = [...src.metadata].filter(([k]) => k.startsWith("tokenizer.")).map(([key, e]) => ({ key, ...e }));
  src.close();
  const metadata = [
    kv.string("general.architecture", "llama"), kv.string("general.name", "specdec-quant-check"),
    kv.u32("llama.context_length", 64), kv.u32("llama.embedding_length", E), kv.u32("llama.feed_forward_length", F),
    kv.u32("llama.block_count", 2), kv.u32("llama.attention.head_count", H), kv.u32("llama.attention.head_count_kv", H),
    kv.u32("llama.rope.dimension_count", E / H), kv.f32("llama.rope.freq_base", 10000), kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    kv.u32("llama.vocab_size", V), ...tokenizer,
  ];
  const T = GgmlType;
  // [name, rows, cols, type]: every supported quantized type appears at least once.
  const mats: [string, number, number, number][] = [
    ["token_embd.weight", V, E, T.Q6_K], ["output.weight", V, E, T.Q4_0],
    ["blk.0.attn_q.weight", E, E, T.Q4_0], ["blk.0.attn_k.weight", E, E, T.Q4_1], ["blk.0.attn_v.weight", E, E, T.Q5_0],
    ["blk.0.attn_output.weight", E, E, T.Q5_1], ["blk.0.ffn_gate.weight", F, E, T.Q8_0], ["blk.0.ffn_up.weight", F, E, T.Q4_K],
    ["blk.0.ffn_down.weight", E, F, T.Q5_K],
    ["blk.1.attn_q.weight", E, E, T.F16], ["blk.1.attn_k.weight", E, E, T.BF16], ["blk.1.attn_v.weight", E, E, T.Q6_K],
    ["blk.1.attn_output.weight", E, E, T.Q8_0], ["blk.1.ffn_gate.weight", F, E, T.Q4_K], ["blk.1.ffn_up.weight", F, E, T.Q5_K],
    ["blk.1.ffn_down.weight", E, F, T.Q6_K],
  ];
  const r = rng(2024);
  const quantized = [], dequantized = [], original = [];
  for (const [name, rows, cols, type] of mats) {
    const gain = name.startsWith("token_embd") ? 1 : name.startsWith("output") ? 3 / Math.sqrt(cols) : 1 / Math.sqrt(cols);
    const x = Float32Array.from({ length: rows * cols }, () => gaussian(r) * gain);
    const data = quantizeRow(type, x, rows * cols);
    const deq = new Float32Array(rows * cols);
    dequantizeRow(type, data, 0, deq, rows * cols);
    quantized.push({ name, dims: [cols, rows], type, data });
    dequantized.push({ name, dims: [cols, rows], type: T.F32, data: new Uint8Array(deq.buffer) });
    original.push({ name, dims: [cols, rows], type: T.F32, data: new Uint8Array(x.buffer) });
  }
  const norms = ["output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "blk.1.attn_norm.weight", "blk.1.ffn_norm.weight"].map((name) => ({
    name, dims: [E], type: T.F32, data: new Uint8Array(Float32Array.from({ length: E }, () => 1 + 0.1 * gaussian(r)).buffer),
  }));
  const dir = mkdtempSync(join(tmpdir(), "specdec-quant-e2e-"));
  try {
    const qPath = join(dir, "q.gguf"), fPath = join(dir, "f32.gguf"), oPath = join(dir, "orig.gguf");
    writeGguf(qPath, { metadata, tensors: [...quantized, ...norms] });
    writeGguf(fPath, { metadata, tensors: [...dequantized, ...norms] });
    writeGguf(oPath, { metadata, tensors: [...original, ...norms] });

    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, logger: () => {} });
    const tokens = [1, 100, 200, 300, 50, 7];
    async function probabilities(path: string): Promise<Float64Array[]> {
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      const context = await model.createContext({ contextSize: 64, threads: 1 });
      try {
        const want = { generateNext: { probabilities: true, options: { temperature: 1 } } } as const;
        const results = await context.getSequence().controlledEvaluate(tokens.map((t) => [t, want]) as never);
        return tokens.map((_, i) => {
          const p = new Float64Array(V);
          for (const [tok, pr] of results[i]!.next.probabilities!) p[tok] = pr;
          return p;
        });
      } finally {
        await context.dispose();
        await model.dispose();
      }
    }
    const pq = await probabilities(qPath);
    const pf = await probabilities(fPath);
    const po = await probabilities(oPath);
    // llama.cpp rounds activations to 8 bits (or f16/bf16) for quantized matmuls, so pq and pf
    // differ slightly (measured 0.016); a misread layout would scramble whole weight matrices.
    // Control: the unquantized weights give a clearly larger difference (the quantization error).
    let worst = 0, control = 0, spread = 0;
    for (let i = 0; i < tokens.length; i++) {
      for (let tok = 0; tok < V; tok++) {
        worst = Math.max(worst, Math.abs(pq[i][tok] - pf[i][tok]));
        control = Math.max(control, Math.abs(po[i][tok] - pf[i][tok]));
      }
      spread = Math.max(spread, ...pf[i]);
    }
    t.diagnostic(`max |dp|: quantized vs dequantized ${worst.toFixed(4)}, unquantized vs dequantized ${control.toFixed(4)}`);
    assert.ok(spread > 0.05, `the test model's distributions are too flat to compare (max p ${spread})`);
    assert.ok(worst < 0.03, `max |p_quantized - p_dequantized| = ${worst}`);
    assert.ok(worst < control / 2, `llama.cpp on our quantized file (${worst}) is not much closer to our dequantization than the unquantized model is (${control})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
