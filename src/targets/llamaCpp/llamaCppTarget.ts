// The Target on llama.cpp, straight over libllama: one model, one context whose KV cache is the
// target's cache. Sequence 0 holds the committed tokens. A tree pass puts every branch in a
// sequence of its own, all in one llama_decode: a token carries the sequence ids of every leaf
// below it, its position is its depth, so each branch attends to the committed prefix and its
// own ancestors only. `keep` then turns the accepted branch back into sequence 0 with the
// llama_memory_seq_* calls (nothing is recomputed).

import * as koffi from "koffi";
import { SpecdecError } from "../../errors.js";
import { GgmlMatrix } from "../../engine/matrix.js";
import { openGguf } from "../../gguf/reader.js";
import type { Token } from "../../types.js";
import { isPrefix, type PassRequest, type PassResult, type Target, type TargetCapabilities, type TokenMatrices, type Vocabulary } from "../target.js";
import { argmaxOf, hasNonFinite, softmax } from "../logits.js";
import type { Ptr } from "./api.js";
import { NativeBatch } from "./batch.js";
import { GGML_TYPE, LLAMA_FLASH_ATTN_TYPE, LLAMA_POOLING_TYPE_NONE, LLAMA_SPLIT_MODE_NONE } from "./layouts.js";
import { loadLibrary, type LlamaLibrary } from "./library.js";
import type { GpuChoice } from "./packages.js";
import { checkModelFile, contextBound, type CheckedModelFile } from "./validate.js";

export type KvCacheType = keyof typeof GGML_TYPE;

export interface LlamaCppOptions {
  /** Tokens the cache holds. Default: the model's context length, at most 4096. */
  contextSize?: number;
  /** Most tokens one pass takes (llama.cpp's n_batch = n_ubatch); longer chains are split. Default 64, at most the context size. */
  maxBatch?: number;
  /**
   * Most branches (leaves) one tree pass may have: the context's n_seq_max, at most maxBatch
   * and 256 (LLAMA_MAX_SEQ). Default: maxBatch (any tree of maxBatch tokens fits).
   */
  maxLeaves?: number;
  /**
   * CPU threads for one-token passes. Default 1: on the 2-core machines here a small model's
   * one-token pass is fastest on one thread.
   */
  threads?: number;
  /** CPU threads for passes of several tokens (tree and chain verification, prompts). Default: `threads`. */
  batchThreads?: number;
  /**
   * Thread counts a pass may ask for (`PassRequest.threads`, chosen by the cost model per pass
   * size): 1 .. this. Default: none (every pass uses threads / batchThreads).
   */
  maxThreads?: number;
  /**
   * llama.cpp's flash attention. Default "off": its CPU kernel rounds Q to F16 and sums in a
   * different order, which the tree-equals-branch tolerance (~1e-6) does not allow for.
   */
  flashAttention?: "auto" | "on" | "off";
  /**
   * Type of the K and V cache. Default "f32", not llama.cpp's "f16": with an F16 cache a
   * one-token pass rounds differently from a pass of several tokens (stories260K: max |dp| 7.8e-4
   * between the two, against 7e-7 with F32), and exact speculation compares exactly those two.
   * "f16" halves the cache's memory.
   */
  kvCacheType?: KvCacheType;
  /** ggml backend: "auto" (a GPU whose package and driver are installed, else the CPU), "cpu", "cuda", "vulkan". */
  gpu?: GpuChoice;
  /** Layers to offload to the GPU (llama.cpp's n_gpu_layers; -1 = all). Default: all with a GPU backend, 0 on the CPU. */
  gpuLayers?: number;
}

const LLAMA_MAX_SEQ = 256;

/** A loaded model and how many contexts (targets) use it. */
interface SharedModel {
  readonly ptr: Ptr;
  users: number;
  /** Its embedding and output matrices as the engine multiplies them, read on first use. */
  matrices?: TokenMatrices;
}

/** What a context is made with (a fork gets the same). */
interface ContextSettings {
  readonly contextSize: number;
  readonly maxBatch: number;
  readonly maxLeaves: number;
  readonly threads: number;
  readonly batchThreads: number;
  readonly maxThreads: number;
  readonly flash: keyof typeof LLAMA_FLASH_ATTN_TYPE;
  readonly kvType: KvCacheType;
}

export class LlamaCppTarget implements Target {
  readonly backend = "llama.cpp";
  readonly capabilities: TargetCapabilities = { treeAttention: true, hiddenStates: true };
  readonly vocabSize: number;
  readonly contextSize: number;
  readonly maxBatch: number;
  readonly hiddenSize: number;
  readonly eogTokens: ReadonlySet<Token>;
  /** The most leaves (branches) a tree pass may have. */
  readonly maxLeaves: number;
  readonly vocab: Vocabulary;
  readonly threadCounts?: readonly number[];
  readonly roundsActivations: boolean;
  readonly reusesGraphs = true;

  private cached = 0; // tokens in the cache (a tree pass counts all its tokens until keep)
  private embeddingsOn = false;
  // The last pass, when it was a tree: its first position, and for every token one leaf
  // sequence that holds it (what keep needs to find the accepted branch's cells).
  private tree: { from: number; n: number; parents: readonly number[]; leafOf: Int32Array; leaves: number } | undefined;
  private readonly batch: NativeBatch;
  private readonly mem: Ptr;
  private readonly vocabPtr: Ptr;
  private readonly bos: number;
  private readonly addBos: boolean;
  private disposed = false;
  // Scratch for tokenize / detokenize, grown on demand.
  private tokScratch = new Int32Array(256);
  private textScratch = new Uint8Array(1024);

  private threadsNow: [number, number]; // the context's (one-token, batch) thread counts now

  private constructor(
    readonly path: string,
    readonly file: CheckedModelFile,
    readonly library: LlamaLibrary,
    private readonly model: SharedModel,
    private readonly ctx: Ptr,
    private readonly pool: Ptr | null, // the ggml threadpool attached to ctx (several threads only)
    private readonly settings: ContextSettings,
  ) {
    const L = library.llama;
    const { contextSize, maxBatch, maxLeaves } = settings;
    this.threadsNow = [settings.threads, settings.batchThreads];
    if (settings.maxThreads > 1) this.threadCounts = Array.from({ length: settings.maxThreads }, (_, i) => i + 1);
    this.vocab = file.vocab;
    this.roundsActivations = file.quantizedWeights;
    this.vocabPtr = L.llama_model_get_vocab(model.ptr);
    this.vocabSize = L.llama_vocab_n_tokens(this.vocabPtr);
    this.hiddenSize = L.llama_model_n_embd(model.ptr);
    this.contextSize = contextSize;
    this.maxBatch = maxBatch;
    this.maxLeaves = maxLeaves;
    this.mem = L.llama_get_memory(ctx);
    this.bos = L.llama_vocab_bos(this.vocabPtr);
    this.addBos = L.llama_vocab_get_add_bos(this.vocabPtr);
    const eog = new Set<Token>();
    for (let t = 0; t < this.vocabSize; t++) if (L.llama_vocab_is_eog(this.vocabPtr, t)) eog.add(t as Token);
    this.eogTokens = eog;
    this.batch = new NativeBatch(maxBatch, maxLeaves);
  }

  /** Validate the file, then load it into libllama with a context made from `options`. */
  static async load(path: string, options: LlamaCppOptions = {}): Promise<LlamaCppTarget> {
    const file = checkModelFile(path);
    if (options.maxBatch !== undefined && (!Number.isInteger(options.maxBatch) || options.maxBatch < 1 || options.maxBatch > 8192))
      throw new SpecdecError(`batch size must be an integer from 1 to 8192, got ${options.maxBatch}`);
    const threads = options.threads ?? 1, batchThreads = options.batchThreads ?? threads;
    for (const [what, n] of [["threads", threads], ["batch threads", batchThreads]] as const)
      if (!Number.isInteger(n) || n < 1 || n > 512) throw new SpecdecError(`${what} must be an integer from 1 to 512, got ${n}`);
    const kvType = options.kvCacheType ?? "f32";
    if (!(kvType in GGML_TYPE)) throw new SpecdecError(`unknown KV cache type '${kvType}' (choose one of: ${Object.keys(GGML_TYPE).join(", ")})`);
    const flash = options.flashAttention ?? "off";
    if (!(flash in LLAMA_FLASH_ATTN_TYPE)) throw new SpecdecError(`flash attention must be auto, on or off, got '${flash}'`);
    const contextSize = contextBound(file, options.contextSize, kvType === "f32" ? 4 : kvType === "q8_0" ? 34 / 32 : 2);
    // llama.cpp caps a pass at the context size, and its output buffer (one row per token of a
    // pass) must hold a row per sequence: GGML_ASSERT otherwise. So leaves <= batch <= context.
    const maxBatch = Math.min(options.maxBatch ?? 64, contextSize);
    const maxLeaves = options.maxLeaves ?? Math.min(maxBatch, LLAMA_MAX_SEQ);
    if (!Number.isInteger(maxLeaves) || maxLeaves < 1 || maxLeaves > Math.min(maxBatch, LLAMA_MAX_SEQ))
      throw new SpecdecError(`most leaves per tree must be an integer from 1 to ${Math.min(maxBatch, LLAMA_MAX_SEQ)} (the batch size, at most ${LLAMA_MAX_SEQ}), got ${maxLeaves}`);

    const library = loadLibrary({ gpu: options.gpu });
    const L = library.llama;
    const hasGpu = library.devices.some((d) => d.gpu);
    const gpuLayers = options.gpuLayers ?? (hasGpu ? -1 : 0);
    if (!Number.isInteger(gpuLayers) || gpuLayers < -1) throw new SpecdecError(`--gpu-layers must be -1 (all) or a non-negative integer, got ${gpuLayers}`);

    const mp = L.llama_model_default_params();
    mp.n_gpu_layers = gpuLayers;
    if (!hasGpu) mp.split_mode = LLAMA_SPLIT_MODE_NONE;
    const model = L.llama_model_load_from_file(path, mp);
    if (!model) throw new SpecdecError(`llama.cpp could not load ${path} (it refused the file; SPECDEC_LLAMA_LOG=1 shows why)`);

    const maxThreads = options.maxThreads ?? 1;
    if (!Number.isInteger(maxThreads) || maxThreads < 1 || maxThreads > 512) throw new SpecdecError(`most threads must be an integer from 1 to 512, got ${maxThreads}`);
    const settings: ContextSettings = { contextSize, maxBatch, maxLeaves, threads, batchThreads, maxThreads, flash, kvType };
    const shared: SharedModel = { ptr: model, users: 0 };
    return LlamaCppTarget.withContext(path, file, library, shared, settings);
  }

  /** A context for `model` (the model is freed with its last context). */
  private static withContext(path: string, file: CheckedModelFile, library: LlamaLibrary, model: SharedModel, s: ContextSettings): LlamaCppTarget {
    const L = library.llama;
    const cp = L.llama_context_default_params();
    Object.assign(cp, {
      n_ctx: s.contextSize,
      n_batch: s.maxBatch,
      n_ubatch: s.maxBatch, // one pass = one ubatch: a tree is never split across graph runs
      n_seq_max: s.maxLeaves,
      n_outputs_max: 0, // = n_batch: every token of a pass may have an output
      n_outputs_max_per_seq: 0,
      n_threads: s.threads,
      n_threads_batch: s.batchThreads,
      pooling_type: LLAMA_POOLING_TYPE_NONE, // hidden states per position, not pooled
      flash_attn_type: LLAMA_FLASH_ATTN_TYPE[s.flash],
      type_k: GGML_TYPE[s.kvType],
      type_v: GGML_TYPE[s.kvType],
      embeddings: false, // switched on for passes that ask for hidden states
      kv_unified: true, // one cache shared by all sequences: a tree's branches share the prefix cells
      no_perf: true,
    });
    const ctx = L.llama_init_from_model(model.ptr, cp);
    if (!ctx) {
      if (model.users === 0) L.llama_model_free(model.ptr);
      throw new SpecdecError(`llama.cpp could not create a ${s.contextSize}-token context for ${path} (SPECDEC_LLAMA_LOG=1 shows why)`);
    }
    L.llama_set_n_threads(ctx, s.threads, s.batchThreads);
    // Several threads: one persistent pool for every pass (ggml's default makes and joins its
    // worker threads on every graph run: a cost per pass that llama-bench does not pay either).
    let pool: Ptr | null = null;
    const poolThreads = Math.max(s.threads, s.batchThreads, s.maxThreads);
    if (poolThreads > 1 && library.threadpool) {
      // No polling between passes: idle workers sleep instead of spinning, so a one-token pass on
      // one thread (the cost model's choice for small passes) does not compete with a spinning
      // worker for the cores (docs/measurements.md, "threads under load").
      const params = library.ggml.ggml_threadpool_params_default(poolThreads);
      params.poll = 0;
      pool = library.threadpool.ggml_threadpool_new(params);
      if (pool) L.llama_attach_threadpool(ctx, pool, null);
    }
    model.users++;
    return new LlamaCppTarget(path, file, library, model, ctx, pool, s);
  }

  /** A second target over the same loaded model with a context (KV cache) of its own: a server slot. */
  async fork(): Promise<LlamaCppTarget> {
    this.checkLive();
    return LlamaCppTarget.withContext(this.path, this.file, this.library, this.model, this.settings);
  }

  get length(): number {
    return this.cached;
  }

  /** The native context, its memory and the batch, for benchmarks that time libllama alone against this binding. */
  get native(): { readonly ctx: Ptr; readonly mem: Ptr; readonly batch: NativeBatch } {
    return { ctx: this.ctx, mem: this.mem, batch: this.batch };
  }

  // ---- text ----

  tokenize(text: string, addBos?: boolean, parseSpecial = false): Token[] {
    const bytes = Buffer.from(text, "utf8");
    const L = this.library.llama;
    let n = L.llama_tokenize(this.vocabPtr, bytes, bytes.length, this.tokScratch, this.tokScratch.length, false, parseSpecial);
    if (n < 0) {
      if (n === -0x80000000) throw new SpecdecError(`prompt too long to tokenize (${bytes.length} bytes)`);
      this.tokScratch = new Int32Array(-n);
      n = L.llama_tokenize(this.vocabPtr, bytes, bytes.length, this.tokScratch, this.tokScratch.length, false, parseSpecial);
    }
    const ids = Array.from(this.tokScratch.subarray(0, n)) as Token[];
    if ((addBos ?? this.addBos) && this.bos >= 0) ids.unshift(this.bos as Token);
    return ids;
  }

  detokenize(tokens: readonly Token[], previous?: readonly Token[]): string {
    if (!previous || previous.length === 0) return this.decodeText(this.detokenizeBytes(tokens));
    // The bytes `tokens` add after `previous` (leading-space rules depend on what came before).
    const before = this.detokenizeBytes(previous);
    const all = this.detokenizeBytes([...previous, ...tokens]);
    const rest = all.length >= before.length && all.subarray(0, before.length).equals(before) ? all.subarray(before.length) : this.detokenizeBytes(tokens);
    return this.decodeText(rest);
  }

  private decodeText(b: Uint8Array): string {
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(b);
  }

  private detokenizeBytes(tokens: readonly Token[]): Buffer {
    this.checkTokens(tokens);
    const ids = Int32Array.from(tokens);
    const L = this.library.llama;
    let n = L.llama_detokenize(this.vocabPtr, ids, ids.length, this.textScratch, this.textScratch.length, true, false);
    if (n < 0) {
      this.textScratch = new Uint8Array(-n);
      n = L.llama_detokenize(this.vocabPtr, ids, ids.length, this.textScratch, this.textScratch.length, true, false);
    }
    return Buffer.from(this.textScratch.subarray(0, n));
  }

  private checkTokens(tokens: readonly Token[]): void {
    for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) throw new SpecdecError(`token id ${t} is outside the vocabulary (0 to ${this.vocabSize - 1})`);
  }

  // ---- passes ----

  async evaluate(tokens: readonly Token[], request: PassRequest = {}): Promise<PassResult> {
    this.checkLive();
    request.signal?.throwIfAborted();
    if (this.tree) throw new Error("LlamaCppTarget: keep or truncate the last tree pass before the next evaluate");
    this.checkTokens(tokens);
    if (this.cached + tokens.length > this.contextSize)
      throw new SpecdecError(`context full: ${this.cached} + ${tokens.length} tokens exceed the context size ${this.contextSize}`);
    const parents = request.parents;
    const chain = !parents || isChain(parents);
    if (!chain) {
      if (parents.length !== tokens.length) throw new Error(`LlamaCppTarget: ${parents.length} parents for ${tokens.length} tokens`);
      if (tokens.length > this.maxBatch) throw new SpecdecError(`a tree of ${tokens.length} tokens exceeds the batch of ${this.maxBatch}`);
    }
    this.setEmbeddings(request.hidden === true);
    this.setThreads(request.threads);
    const outputs = request.outputs ?? "all";
    const parts: PassResult[] = [];
    if (chain) {
      for (let from = 0; from < tokens.length; from += this.maxBatch) {
        request.signal?.throwIfAborted();
        const n = Math.min(this.maxBatch, tokens.length - from), last = from + n === tokens.length;
        for (let i = 0; i < n; i++) this.batch.setChain(i, tokens[from + i], this.cached + i, outputs === "all" || (outputs === "last" && last && i === n - 1));
        // Filler after the chain's last position (no real token attends to it) with outputs like
        // the chain's, so that the pass has the shape of the last one and llama.cpp reuses its graph.
        const filler = tokens.length === n && request.padTo !== undefined ? Math.max(0, Math.min(request.padTo, this.maxBatch, this.contextSize - this.cached) - n) : 0;
        for (let i = n; i < n + filler; i++) this.batch.setChain(i, tokens[n - 1], this.cached + i, outputs === "all");
        this.decode(n + filler);
        const outs = this.read(n, request);
        if (filler > 0) this.library.llama.llama_memory_seq_rm(this.mem, 0, this.cached + n, -1);
        this.cached += n;
        parts.push(outs);
      }
    } else {
      const n = tokens.length, from = this.cached;
      const { leafOf, leaves } = this.fillTree(tokens, parents, from, outputs);
      // Every branch sees the committed prefix: sequences 1.. join sequence 0's cells (metadata only).
      for (let s = 1; s < leaves; s++) this.library.llama.llama_memory_seq_cp(this.mem, 0, s, -1, -1);
      this.tree = { from, n, parents: [...parents], leafOf, leaves };
      try {
        this.decode(n);
      } catch (e) {
        this.dropTree(from);
        throw e;
      }
      this.cached += n;
      parts.push(this.read(n, request));
    }
    return parts.length === 1 ? parts[0] : concatResults(parts, this.hiddenSize, request);
  }

  /**
   * Lay a tree into the batch: leaves in index order get sequences 0, 1, ...; a token carries
   * the sequences of all leaves below it; positions are depths.
   */
  private fillTree(tokens: readonly Token[], parents: readonly number[], from: number, outputs: string): { leafOf: Int32Array; leaves: number } {
    const n = tokens.length, b = this.batch, S = this.maxLeaves;
    const isLeaf = new Uint8Array(n).fill(1);
    const depth = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const p = parents[i];
      if (!Number.isInteger(p) || p < -1 || p >= i) throw new Error(`LlamaCppTarget: parents[${i}] = ${p} (must be -1 or an earlier token)`);
      if (p >= 0) {
        isLeaf[p] = 0;
        depth[i] = depth[p] + 1;
      }
    }
    const leafOf = new Int32Array(n).fill(-1);
    let leaves = 0;
    for (let i = 0; i < n; i++) {
      b.token[i] = tokens[i];
      b.pos[i] = from + depth[i];
      b.nSeqId[i] = 0;
      b.output[i] = outputs === "all" || (outputs === "last" && i === n - 1) ? 1 : 0;
    }
    for (let leaf = 0; leaf < n; leaf++) {
      if (!isLeaf[leaf]) continue;
      if (leaves === S) throw new SpecdecError(`a tree with more than ${S} branches (leaves) exceeds this context's limit (maxLeaves)`);
      const s = leaves++;
      for (let i = leaf; i >= 0; i = parents[i]) {
        b.seqIds[i * S + b.nSeqId[i]++] = s;
        if (leafOf[i] < 0) leafOf[i] = s;
      }
    }
    return { leafOf, leaves };
  }

  private decode(n: number): void {
    const b = this.batch;
    b.struct.n_tokens = n;
    const rc = this.library.llama.llama_decode(this.ctx, b.struct);
    if (rc === 1) throw new SpecdecError(`llama.cpp found no room for ${n} tokens in the KV cache (context ${this.contextSize})`);
    if (rc !== 0) throw new Error(`llama_decode failed (${rc}) on a pass of ${n} tokens at position ${this.cached}`);
  }

  /** Read the outputs of the pass just decoded, before anything else can overwrite them. */
  private read(n: number, request: PassRequest): PassResult {
    const L = this.library.llama, b = this.batch, V = this.vocabSize;
    // Rows of llama_get_logits: one per output token in batch order (every token with embeddings on).
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (b.output[i]) rows.push(this.embeddingsOn ? i : rows.length);
    const nOut = rows.length, nRows = this.embeddingsOn ? n : nOut;
    const argmax = new Int32Array(nOut);
    if (nOut === 0) return concatResults([], this.hiddenSize, request);
    const logitsPtr = L.llama_get_logits(this.ctx);
    if (!logitsPtr) throw new Error("llama_get_logits returned NULL after a pass with outputs");
    const logits = new Float32Array(koffi.view(logitsPtr, nRows * V * 4));
    const wantProbs = (request.read ?? "probabilities") === "probabilities";
    const probs: Float32Array[] = [];
    for (let o = 0; o < nOut; o++) {
      const off = rows[o] * V;
      // NaN or infinite weights (which libllama loads as they are) give non-finite logits: a
      // clear error, never a token chosen from garbage.
      if (hasNonFinite(logits, off, V)) throw new SpecdecError(`${this.path}: the model computed non-finite logits (NaN or infinite weights, or an overflow)`);
      argmax[o] = argmaxOf(logits, off, V);
      if (wantProbs) probs.push(softmax(logits, off, V));
    }
    let hidden: Float32Array | undefined;
    if (request.hidden) {
      const E = this.hiddenSize;
      const embPtr = L.llama_get_embeddings(this.ctx);
      if (!embPtr) throw new Error("llama_get_embeddings returned NULL with embeddings on");
      const emb = new Float32Array(koffi.view(embPtr, nRows * E * 4));
      hidden = new Float32Array(nOut * E); // (nOut, hiddenSize)
      for (let o = 0; o < nOut; o++) hidden.set(emb.subarray(rows[o] * E, rows[o] * E + E), o * E);
    }
    return { argmax, ...(wantProbs ? { probs } : {}), ...(hidden ? { hidden } : {}) };
  }

  /** This pass's threads: the one asked for (as one-token and batch count), else the target's own. */
  private setThreads(t: number | undefined): void {
    const want: [number, number] = t !== undefined && this.threadCounts?.includes(t) ? [t, t] : [this.settings.threads, this.settings.batchThreads];
    if (want[0] === this.threadsNow[0] && want[1] === this.threadsNow[1]) return;
    this.library.llama.llama_set_n_threads(this.ctx, want[0], want[1]);
    this.threadsNow = want;
  }

  private setEmbeddings(on: boolean): void {
    if (on === this.embeddingsOn) return;
    this.library.llama.llama_set_embeddings(this.ctx, on);
    this.embeddingsOn = on;
  }

  // ---- rolling back ----

  async keep(from: number, indices: readonly number[]): Promise<void> {
    this.checkLive();
    const m = indices.length;
    const t = this.tree;
    const last = t ?? { from, n: this.cached - from }; // after a chain pass any start will do: keep is a truncation
    if (from !== last.from || from < 0) throw new Error(`LlamaCppTarget.keep: from ${from} is not the start of the last pass (${last.from})`);
    for (let i = 0; i < m; i++) if (!Number.isInteger(indices[i]) || indices[i] < 0 || indices[i] >= last.n || (i > 0 && indices[i] <= indices[i - 1])) throw new Error(`LlamaCppTarget.keep: bad indices [${indices.join(", ")}]`);
    if (!t) {
      if (!isPrefix(indices)) throw new Error("LlamaCppTarget.keep: a chain pass can only keep a prefix");
      await this.truncate(from + m);
      return;
    }
    const M = this.library.llama, mem = this.mem;
    if (m === 0) {
      this.dropTree(from);
      return;
    }
    // The kept tokens must be one root path of the tree (each the parent of the next): then a
    // leaf sequence below the last of them holds exactly them, at positions from + 0 .. from + m - 1,
    // plus the committed prefix. Their cells need not be contiguous: attention masks by
    // sequence and position, not by cell order.
    for (let i = 0; i < m; i++)
      if (t.parents[indices[i]] !== (i === 0 ? -1 : indices[i - 1])) throw new Error(`LlamaCppTarget.keep: indices [${indices.join(", ")}] are not one branch of the tree`);
    const s = t.leafOf[indices[m - 1]];
    M.llama_memory_seq_rm(mem, s, from + m, -1); // the branch below the last kept token
    M.llama_memory_seq_keep(mem, s); // every other branch (and sequence 0's copy) leaves the cache
    if (s !== 0) {
      M.llama_memory_seq_cp(mem, s, 0, -1, -1);
      M.llama_memory_seq_rm(mem, s, -1, -1);
    }
    this.tree = undefined;
    this.cached = from + m;
  }

  /** Forget the whole last tree pass (after a failure, or when nothing of it is kept). */
  private dropTree(from: number): void {
    const M = this.library.llama;
    M.llama_memory_seq_rm(this.mem, -1, from, -1);
    M.llama_memory_seq_keep(this.mem, 0);
    this.tree = undefined;
    this.cached = from;
  }

  async truncate(length: number): Promise<void> {
    this.checkLive();
    if (!Number.isInteger(length) || length < 0) throw new Error(`LlamaCppTarget.truncate: bad length ${length}`);
    if (this.tree) {
      const from = this.tree.from;
      this.dropTree(from);
      if (length >= from) return;
    }
    if (length >= this.cached) return;
    if (!this.library.llama.llama_memory_seq_rm(this.mem, 0, length, -1)) throw new SpecdecError(`this model's memory cannot drop its last tokens (a recurrent architecture?): llama.cpp refused`);
    this.cached = length;
  }

  async reset(): Promise<void> {
    this.checkLive();
    this.library.llama.llama_memory_clear(this.mem, false); // cells only: their data is overwritten before it is read again
    this.tree = undefined;
    this.cached = 0;
  }

  // ---- helpers' matrices ----

  /** The embedding and output matrices, read with our own GGUF reader from the same (validated) file on first use. */
  tokenMatrices(): TokenMatrices {
    if (this.model.matrices) return this.model.matrices;
    const f = openGguf(this.path);
    try {
      const read = (name: string) => {
        const t = f.tensors.find((x) => x.name === name);
        if (!t || t.dims.length !== 2) throw new SpecdecError(`${this.path}: ${name} is missing or not a matrix`);
        return new GgmlMatrix(t.type, f.readTensorData(t), t.dims[1], t.dims[0]);
      };
      const embedding = read("token_embd.weight");
      this.model.matrices = { embedding, output: this.file.hasOutputWeight ? read("output.weight") : embedding };
      return this.model.matrices;
    } finally {
      f.close();
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.batch.free();
    if (this.pool) this.library.llama.llama_detach_threadpool(this.ctx);
    this.library.llama.llama_free(this.ctx);
    if (this.pool) this.library.threadpool!.ggml_threadpool_free(this.pool);
    if (--this.model.users === 0) this.library.llama.llama_model_free(this.model.ptr);
  }

  private checkLive(): void {
    if (this.disposed) throw new Error("LlamaCppTarget used after dispose");
  }
}

function isChain(parents: readonly number[]): boolean {
  for (let i = 0; i < parents.length; i++) if (parents[i] !== i - 1) return false;
  return true;
}

/** The results of a chain split into several passes, as one (also for no pass at all). */
function concatResults(parts: PassResult[], hiddenSize: number, request: PassRequest): PassResult {
  const nOut = parts.reduce((s, p) => s + p.argmax.length, 0);
  const argmax = new Int32Array(nOut);
  let o = 0;
  for (const p of parts) {
    argmax.set(p.argmax, o);
    o += p.argmax.length;
  }
  const probs = (request.read ?? "probabilities") === "probabilities" ? parts.flatMap((p) => p.probs ?? []) : undefined;
  let hidden: Float32Array | undefined;
  if (request.hidden) {
    hidden = new Float32Array(nOut * hiddenSize);
    let h = 0;
    for (const p of parts) {
      hidden.set(p.hidden!, h);
      h += p.hidden!.length;
    }
  }
  return { argmax, ...(probs ? { probs } : {}), ...(hidden ? { hidden } : {}) };
}
