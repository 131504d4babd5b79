// A llama_batch in one native allocation that JavaScript writes through typed-array views: no
// per-pass marshalling beyond the 56-byte struct itself. Made once per context.

import * as koffi from "koffi";
import type { Ptr } from "./api.js";

export class NativeBatch {
  /** token[capacity]: the token ids. */
  readonly token: Int32Array;
  /** pos[capacity]: each token's position (its depth in a tree, from the cache's end). */
  readonly pos: Int32Array;
  /** nSeqId[capacity]: how many sequence ids each token carries. */
  readonly nSeqId: Int32Array;
  /** seqIds[capacity * maxSeqs]: row i holds token i's sequence ids (row i of seq_id[][]). */
  readonly seqIds: Int32Array;
  /** output[capacity]: 1 where the pass returns logits (llama_batch.logits). */
  readonly output: Int8Array;
  /** The struct passed to llama_decode; only n_tokens changes between passes. */
  readonly struct: { n_tokens: number; token: Ptr; embd: Ptr; pos: Ptr; n_seq_id: Ptr; seq_id: Ptr; logits: Ptr };
  private memory: Ptr | null;

  constructor(readonly capacity: number, readonly maxSeqs: number) {
    // Layout, 8-byte aligned: seq_id pointers (8 * cap) | token (4 * cap) | pos (4 * cap) |
    // n_seq_id (4 * cap) | seq id rows (4 * cap * maxSeqs) | output flags (cap).
    const ptrBytes = 8 * capacity, intBytes = 4 * capacity, rowBytes = 4 * capacity * maxSeqs;
    const offToken = ptrBytes, offPos = offToken + intBytes, offNSeq = offPos + intBytes, offRows = offNSeq + intBytes, offOut = offRows + rowBytes;
    const bytes = offOut + capacity;
    this.memory = koffi.alloc("uint8_t", bytes) as Ptr;
    const ab = koffi.view(this.memory, bytes);
    this.token = new Int32Array(ab, offToken, capacity);
    this.pos = new Int32Array(ab, offPos, capacity);
    this.nSeqId = new Int32Array(ab, offNSeq, capacity);
    this.seqIds = new Int32Array(ab, offRows, capacity * maxSeqs);
    this.output = new Int8Array(ab, offOut, capacity);
    const rowPtrs = new BigUint64Array(ab, 0, capacity);
    const base = this.memory;
    for (let i = 0; i < capacity; i++) rowPtrs[i] = base + BigInt(offRows + 4 * maxSeqs * i);
    this.struct = { n_tokens: 0, token: base + BigInt(offToken), embd: 0n, pos: base + BigInt(offPos), n_seq_id: base + BigInt(offNSeq), seq_id: base, logits: base + BigInt(offOut) };
  }

  /** Token i in sequence 0 only, at position `pos`, with or without an output. */
  setChain(i: number, token: number, pos: number, output: boolean): void {
    this.token[i] = token;
    this.pos[i] = pos;
    this.nSeqId[i] = 1;
    this.seqIds[i * this.maxSeqs] = 0;
    this.output[i] = output ? 1 : 0;
  }

  free(): void {
    if (this.memory !== null) koffi.free(this.memory);
    this.memory = null;
  }
}
