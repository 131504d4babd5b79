// The C structs the binding passes to and reads from libllama, declared once, field by field in
// llama.h's order (koffi lays them out with the C rules). test/llamaCppLayouts.test.ts compiles
// a C file against the bundled llama.h and checks every size and offset here; at load,
// checkDefaults compares libllama's own default parameters, read through these layouts, with
// the values below, so a different libllama is refused instead of misread.

import * as koffi from "koffi";
import { SpecdecError } from "../../errors.js";

/** llama_model_params (80 bytes in this release). */
export const ModelParams = koffi.struct("llama_model_params", {
  devices: "void *", // ggml_backend_dev_t *: NULL-terminated device list, NULL = all
  tensor_buft_overrides: "void *",
  n_gpu_layers: "int32_t",
  split_mode: "int32_t", // enum llama_split_mode
  load_mode: "int32_t", // enum llama_load_mode
  lazy_mode: "int32_t", // enum llama_lazy_mode
  main_gpu: "int32_t",
  tensor_split: "void *", // const float *
  progress_callback: "void *",
  progress_callback_user_data: "void *",
  kv_overrides: "void *",
  vocab_only: "bool",
  check_tensors: "bool",
  use_extra_bufts: "bool",
  no_host: "bool",
  no_alloc: "bool",
  load_mtp: "bool",
});

/** llama_context_params (160 bytes in this release). */
export const ContextParams = koffi.struct("llama_context_params", {
  n_ctx: "uint32_t",
  n_batch: "uint32_t",
  n_ubatch: "uint32_t",
  n_seq_max: "uint32_t",
  n_rs_seq: "uint32_t",
  n_outputs_max: "uint32_t",
  n_outputs_max_per_seq: "uint32_t",
  n_threads: "int32_t",
  n_threads_batch: "int32_t",
  ctx_type: "int32_t", // enum llama_context_type
  rope_scaling_type: "int32_t",
  pooling_type: "int32_t",
  attention_type: "int32_t",
  flash_attn_type: "int32_t",
  rope_freq_base: "float",
  rope_freq_scale: "float",
  yarn_ext_factor: "float",
  yarn_attn_factor: "float",
  yarn_beta_fast: "float",
  yarn_beta_slow: "float",
  yarn_orig_ctx: "uint32_t",
  defrag_thold: "float",
  cb_eval: "void *",
  cb_eval_user_data: "void *",
  type_k: "int32_t", // enum ggml_type
  type_v: "int32_t",
  abort_callback: "void *",
  abort_callback_data: "void *",
  embeddings: "bool",
  offload_kqv: "bool",
  no_perf: "bool",
  op_offload: "bool",
  swa_full: "bool",
  kv_unified: "bool",
  samplers: "void *",
  n_samplers: "size_t",
  ctx_other: "void *",
});

/** llama_batch (56 bytes): every member a pointer into memory the caller owns (see batch.ts). */
export const Batch = koffi.struct("llama_batch", {
  n_tokens: "int32_t",
  token: "void *", // llama_token[n]
  embd: "void *", // float[n * n_embd], NULL for token input
  pos: "void *", // llama_pos[n]
  n_seq_id: "void *", // int32_t[n]
  seq_id: "void *", // llama_seq_id *[n]
  logits: "void *", // int8_t[n]: 1 = output this position
});

/** GGML_MAX_N_THREADS in ggml.h: the length of a threadpool's CPU mask. */
export const GGML_MAX_N_THREADS = 512;

/** ggml_threadpool_params (ggml.h, 528 bytes): filled by ggml_threadpool_params_default. */
export const ThreadpoolParams = koffi.struct("ggml_threadpool_params", {
  cpumask: koffi.array("bool", GGML_MAX_N_THREADS), // all false: the default affinity
  n_threads: "int32_t",
  prio: "int32_t", // enum ggml_sched_priority
  poll: "uint32_t", // 0 no polling .. 100 aggressive
  strict_cpu: "bool",
  paused: "bool",
});

/** Sizes of the structs in the llama.h this binding was written for. */
export const STRUCT_SIZES = { llama_model_params: 80, llama_context_params: 160, llama_batch: 56, ggml_threadpool_params: 528 } as const;

/** The structs, by their C names (for the layout test and the size check). */
export const STRUCTS = { llama_model_params: ModelParams, llama_context_params: ContextParams, llama_batch: Batch, ggml_threadpool_params: ThreadpoolParams } as const;

// enum values used by the binding (llama.h, ggml.h)
export const LLAMA_SPLIT_MODE_NONE = 0;
export const LLAMA_POOLING_TYPE_NONE = 0;
export const LLAMA_FLASH_ATTN_TYPE = { auto: -1, off: 0, on: 1 } as const;
export const GGML_TYPE = { f32: 0, f16: 1, q8_0: 8, bf16: 30 } as const;
export const GGML_BACKEND_DEVICE_TYPE_GPU = 1; // enum ggml_backend_dev_type: CPU 0, GPU 1, IGPU 2, ACCEL 3

/** What llama_model_default_params() returns in this release (llama-model.cpp). */
export const KNOWN_MODEL_DEFAULTS: Record<string, number | boolean | null> = {
  devices: null, tensor_buft_overrides: null, n_gpu_layers: -1, split_mode: 1, load_mode: -1, lazy_mode: 1,
  main_gpu: 0, tensor_split: null, progress_callback: null, progress_callback_user_data: null, kv_overrides: null,
  vocab_only: false, check_tensors: false, use_extra_bufts: true, no_host: false, no_alloc: false, load_mtp: false,
};

/** What llama_context_default_params() returns in this release (llama-context.cpp). */
export const KNOWN_CONTEXT_DEFAULTS: Record<string, number | boolean | null> = {
  n_ctx: 512, n_batch: 2048, n_ubatch: 512, n_seq_max: 1, n_rs_seq: 0, n_outputs_max: 0, n_outputs_max_per_seq: 1,
  n_threads: 4, n_threads_batch: 4, ctx_type: 0, rope_scaling_type: -1, pooling_type: -1, attention_type: -1, flash_attn_type: -1,
  rope_freq_base: 0, rope_freq_scale: 0, yarn_ext_factor: -1, yarn_attn_factor: -1, yarn_beta_fast: -1, yarn_beta_slow: -1,
  yarn_orig_ctx: 0, defrag_thold: -1, cb_eval: null, cb_eval_user_data: null, type_k: 1, type_v: 1,
  abort_callback: null, abort_callback_data: null, embeddings: false, offload_kqv: true, no_perf: true, op_offload: true,
  swa_full: true, kv_unified: false, samplers: null, n_samplers: 0, ctx_other: null,
};

/**
 * The fields where `actual` (a default-params struct as koffi decoded it) differs from `known`:
 * empty when the library matches the declared layout. Pointers decode as null or a bigint.
 */
export function defaultsMismatch(actual: Record<string, unknown>, known: Record<string, number | boolean | null>): string[] {
  const bad: string[] = [];
  for (const [field, want] of Object.entries(known)) {
    let got = actual[field];
    if (typeof got === "bigint") got = got === 0n ? null : Number(got);
    if (got === undefined || got !== want) bad.push(`${field} = ${String(got)} (expected ${String(want)})`);
  }
  return bad;
}

/** Refuse a libllama whose default parameters, read through the declared layouts, are not the known ones. */
export function checkDefaults(library: string, model: Record<string, unknown>, context: Record<string, unknown>): void {
  for (const [name, size] of Object.entries(STRUCT_SIZES)) {
    const declared = koffi.sizeof(STRUCTS[name as keyof typeof STRUCTS]);
    if (declared !== size) throw new SpecdecError(`internal error: ${name} declared as ${declared} bytes, expected ${size}`);
  }
  const bad = [...defaultsMismatch(model, KNOWN_MODEL_DEFAULTS).map((b) => `llama_model_params.${b}`), ...defaultsMismatch(context, KNOWN_CONTEXT_DEFAULTS).map((b) => `llama_context_params.${b}`)];
  if (bad.length)
    throw new SpecdecError(`${library} is not the libllama this binding was written for (its default ${bad.slice(0, 2).join(", ")}${bad.length > 2 ? `, and ${bad.length - 2} more` : ""}): install node-llama-cpp 3.21.1`);
}
