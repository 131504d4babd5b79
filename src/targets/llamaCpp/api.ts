// The part of libllama / libggml the binding calls, with C prototypes as in llama.h and
// ggml-backend.h. Opaque handles (models, contexts, memories, vocabularies, devices) are plain
// pointers, which koffi passes as bigints. Everything here is synchronous: it runs on the
// calling thread, and no JavaScript function is ever handed to native code.

import * as koffi from "koffi";
import { Batch, ContextParams, ModelParams, ThreadpoolParams } from "./layouts.js";

/** A native pointer as koffi passes it (0n is NULL). */
export type Ptr = bigint;

type Fn<A extends unknown[], R> = (...args: A) => R;

/** ggml's backend registry: loading the compute backends and asking what was loaded. */
export interface GgmlApi {
  ggml_backend_load_all_from_path: Fn<[dir: string], void>;
  ggml_backend_dev_count: Fn<[], number>;
  ggml_backend_dev_get: Fn<[index: number], Ptr>;
  ggml_backend_dev_name: Fn<[dev: Ptr], string>;
  ggml_backend_dev_description: Fn<[dev: Ptr], string>;
  ggml_backend_dev_type: Fn<[dev: Ptr], number>;
  ggml_backend_reg_count: Fn<[], number>;
  ggml_backend_reg_get: Fn<[index: number], Ptr>;
  ggml_backend_reg_name: Fn<[reg: Ptr], string>;
  ggml_backend_reg_by_name: Fn<[name: string], Ptr | null>;
  ggml_backend_reg_get_proc_address: Fn<[reg: Ptr, name: string], Ptr | null>;
  ggml_threadpool_params_default: Fn<[nThreads: number], Record<string, unknown>>;
}

/** The CPU backend's threadpool functions (in the CPU variant library, found through its registry entry). */
export interface ThreadpoolApi {
  ggml_threadpool_new: Fn<[params: Record<string, unknown>], Ptr | null>;
  ggml_threadpool_free: Fn<[pool: Ptr], void>;
}

export interface LlamaApi {
  llama_log_set: Fn<[callback: Ptr | null, userData: Ptr | null], void>;
  llama_backend_init: Fn<[], void>;
  llama_model_default_params: Fn<[], Record<string, unknown>>;
  llama_context_default_params: Fn<[], Record<string, unknown>>;
  llama_print_system_info: Fn<[], string>;
  llama_max_parallel_sequences: Fn<[], number>;

  llama_model_load_from_file: Fn<[path: string, params: Record<string, unknown>], Ptr | null>;
  llama_model_free: Fn<[model: Ptr], void>;
  llama_model_n_embd: Fn<[model: Ptr], number>;
  llama_model_n_ctx_train: Fn<[model: Ptr], number>;
  llama_model_n_layer: Fn<[model: Ptr], number>;
  llama_model_get_vocab: Fn<[model: Ptr], Ptr>;

  llama_init_from_model: Fn<[model: Ptr, params: Record<string, unknown>], Ptr | null>;
  llama_free: Fn<[ctx: Ptr], void>;
  llama_n_ctx: Fn<[ctx: Ptr], number>;
  llama_n_batch: Fn<[ctx: Ptr], number>;
  llama_n_ubatch: Fn<[ctx: Ptr], number>;
  llama_n_seq_max: Fn<[ctx: Ptr], number>;
  llama_set_n_threads: Fn<[ctx: Ptr, nThreads: number, nThreadsBatch: number], void>;
  llama_attach_threadpool: Fn<[ctx: Ptr, pool: Ptr, poolBatch: Ptr | null], void>;
  llama_detach_threadpool: Fn<[ctx: Ptr], void>;
  llama_set_embeddings: Fn<[ctx: Ptr, on: boolean], void>;
  llama_decode: Fn<[ctx: Ptr, batch: Record<string, unknown>], number>;
  llama_get_logits: Fn<[ctx: Ptr], Ptr | null>;
  llama_get_logits_ith: Fn<[ctx: Ptr, i: number], Ptr | null>;
  llama_get_embeddings: Fn<[ctx: Ptr], Ptr | null>;
  llama_get_embeddings_ith: Fn<[ctx: Ptr, i: number], Ptr | null>;

  llama_get_memory: Fn<[ctx: Ptr], Ptr>;
  llama_memory_clear: Fn<[mem: Ptr, data: boolean], void>;
  llama_memory_seq_rm: Fn<[mem: Ptr, seq: number, p0: number, p1: number], boolean>;
  llama_memory_seq_cp: Fn<[mem: Ptr, src: number, dst: number, p0: number, p1: number], void>;
  llama_memory_seq_keep: Fn<[mem: Ptr, seq: number], void>;
  llama_memory_seq_add: Fn<[mem: Ptr, seq: number, p0: number, p1: number, delta: number], void>;
  llama_memory_seq_pos_min: Fn<[mem: Ptr, seq: number], number>;
  llama_memory_seq_pos_max: Fn<[mem: Ptr, seq: number], number>;

  llama_vocab_n_tokens: Fn<[vocab: Ptr], number>;
  llama_vocab_is_eog: Fn<[vocab: Ptr, token: number], boolean>;
  llama_vocab_bos: Fn<[vocab: Ptr], number>;
  llama_vocab_get_add_bos: Fn<[vocab: Ptr], boolean>;
  /** Returns the token count, or minus the count needed when `max` is too small. */
  llama_tokenize: Fn<[vocab: Ptr, text: Uint8Array, len: number, out: Int32Array, max: number, addSpecial: boolean, parseSpecial: boolean], number>;
  /** Returns the byte count, or minus the count needed when `len` is too small. */
  llama_token_to_piece: Fn<[vocab: Ptr, token: number, out: Uint8Array, len: number, lstrip: number, special: boolean], number>;
  llama_detokenize: Fn<[vocab: Ptr, tokens: Int32Array, n: number, out: Uint8Array, max: number, removeSpecial: boolean, unparseSpecial: boolean], number>;
}

export function bindGgml(lib: koffi.LibraryHandle, base: koffi.LibraryHandle): GgmlApi {
  return {
    ggml_backend_load_all_from_path: lib.func("void ggml_backend_load_all_from_path(const char *dir)"),
    ggml_backend_dev_count: lib.func("size_t ggml_backend_dev_count()"),
    ggml_backend_dev_get: lib.func("void *ggml_backend_dev_get(size_t index)"),
    ggml_backend_dev_name: lib.func("const char *ggml_backend_dev_name(void *dev)"),
    ggml_backend_dev_description: lib.func("const char *ggml_backend_dev_description(void *dev)"),
    ggml_backend_dev_type: lib.func("int ggml_backend_dev_type(void *dev)"),
    ggml_backend_reg_count: lib.func("size_t ggml_backend_reg_count()"),
    ggml_backend_reg_get: lib.func("void *ggml_backend_reg_get(size_t index)"),
    ggml_backend_reg_name: lib.func("const char *ggml_backend_reg_name(void *reg)"),
    ggml_backend_reg_by_name: lib.func("void *ggml_backend_reg_by_name(const char *name)"),
    ggml_backend_reg_get_proc_address: lib.func("void *ggml_backend_reg_get_proc_address(void *reg, const char *name)"),
    ggml_threadpool_params_default: base.func("ggml_threadpool_params_default", ThreadpoolParams, ["int"]),
  } as unknown as GgmlApi;
}

const ThreadpoolNew = koffi.proto("void *ggml_threadpool_new_t(ggml_threadpool_params *params)");
const ThreadpoolFree = koffi.proto("void ggml_threadpool_free_t(void *pool)");

/** The threadpool functions of the loaded CPU backend, or undefined when it does not export them. */
export function bindThreadpool(ggml: GgmlApi): ThreadpoolApi | undefined {
  const reg = ggml.ggml_backend_reg_by_name("CPU");
  if (!reg) return undefined;
  const pNew = ggml.ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
  const pFree = ggml.ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
  if (!pNew || !pFree) return undefined;
  return {
    ggml_threadpool_new: (params) => koffi.call(pNew, ThreadpoolNew, params) as Ptr | null,
    ggml_threadpool_free: (pool) => koffi.call(pFree, ThreadpoolFree, pool) as void,
  };
}

export function bindLlama(lib: koffi.LibraryHandle): LlamaApi {
  const f = (name: string, result: string | koffi.TypeObject, args: (string | koffi.TypeObject)[]) => lib.func(name, result, args);
  return {
    llama_log_set: f("llama_log_set", "void", ["void *", "void *"]),
    llama_backend_init: f("llama_backend_init", "void", []),
    llama_model_default_params: f("llama_model_default_params", ModelParams, []),
    llama_context_default_params: f("llama_context_default_params", ContextParams, []),
    llama_print_system_info: f("llama_print_system_info", "const char *", []),
    llama_max_parallel_sequences: f("llama_max_parallel_sequences", "size_t", []),

    llama_model_load_from_file: f("llama_model_load_from_file", "void *", ["const char *", ModelParams]),
    llama_model_free: f("llama_model_free", "void", ["void *"]),
    llama_model_n_embd: f("llama_model_n_embd", "int32_t", ["void *"]),
    llama_model_n_ctx_train: f("llama_model_n_ctx_train", "int32_t", ["void *"]),
    llama_model_n_layer: f("llama_model_n_layer", "int32_t", ["void *"]),
    llama_model_get_vocab: f("llama_model_get_vocab", "void *", ["void *"]),

    llama_init_from_model: f("llama_init_from_model", "void *", ["void *", ContextParams]),
    llama_free: f("llama_free", "void", ["void *"]),
    llama_n_ctx: f("llama_n_ctx", "uint32_t", ["void *"]),
    llama_n_batch: f("llama_n_batch", "uint32_t", ["void *"]),
    llama_n_ubatch: f("llama_n_ubatch", "uint32_t", ["void *"]),
    llama_n_seq_max: f("llama_n_seq_max", "uint32_t", ["void *"]),
    llama_set_n_threads: f("llama_set_n_threads", "void", ["void *", "int32_t", "int32_t"]),
    llama_attach_threadpool: f("llama_attach_threadpool", "void", ["void *", "void *", "void *"]),
    llama_detach_threadpool: f("llama_detach_threadpool", "void", ["void *"]),
    llama_set_embeddings: f("llama_set_embeddings", "void", ["void *", "bool"]),
    llama_decode: f("llama_decode", "int32_t", ["void *", Batch]),
    llama_get_logits: f("llama_get_logits", "void *", ["void *"]),
    llama_get_logits_ith: f("llama_get_logits_ith", "void *", ["void *", "int32_t"]),
    llama_get_embeddings: f("llama_get_embeddings", "void *", ["void *"]),
    llama_get_embeddings_ith: f("llama_get_embeddings_ith", "void *", ["void *", "int32_t"]),

    llama_get_memory: f("llama_get_memory", "void *", ["void *"]),
    llama_memory_clear: f("llama_memory_clear", "void", ["void *", "bool"]),
    llama_memory_seq_rm: f("llama_memory_seq_rm", "bool", ["void *", "int32_t", "int32_t", "int32_t"]),
    llama_memory_seq_cp: f("llama_memory_seq_cp", "void", ["void *", "int32_t", "int32_t", "int32_t", "int32_t"]),
    llama_memory_seq_keep: f("llama_memory_seq_keep", "void", ["void *", "int32_t"]),
    llama_memory_seq_add: f("llama_memory_seq_add", "void", ["void *", "int32_t", "int32_t", "int32_t", "int32_t"]),
    llama_memory_seq_pos_min: f("llama_memory_seq_pos_min", "int32_t", ["void *", "int32_t"]),
    llama_memory_seq_pos_max: f("llama_memory_seq_pos_max", "int32_t", ["void *", "int32_t"]),

    llama_vocab_n_tokens: f("llama_vocab_n_tokens", "int32_t", ["void *"]),
    llama_vocab_is_eog: f("llama_vocab_is_eog", "bool", ["void *", "int32_t"]),
    llama_vocab_bos: f("llama_vocab_bos", "int32_t", ["void *"]),
    llama_vocab_get_add_bos: f("llama_vocab_get_add_bos", "bool", ["void *"]),
    llama_tokenize: f("llama_tokenize", "int32_t", ["void *", "uint8_t *", "int32_t", "int32_t *", "int32_t", "bool", "bool"]),
    llama_token_to_piece: f("llama_token_to_piece", "int32_t", ["void *", "int32_t", "uint8_t *", "int32_t", "int32_t", "bool"]),
    llama_detokenize: f("llama_detokenize", "int32_t", ["void *", "int32_t *", "int32_t", "uint8_t *", "int32_t", "bool", "bool"]),
  } as unknown as LlamaApi;
}
