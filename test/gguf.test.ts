import { test } from "node:test";
import assert from "node:assert/strict";
import { openGguf, metaArray, metaNumber, metaString } from "../src/gguf/reader.js";
import { sharedFile } from "./support/sharedData.js";

test("reads stories260K.gguf metadata and tensor infos", () => {
  const f = openGguf(sharedFile("models", "stories260K.gguf"));
  try {
    assert.equal(f.version, 3);
    assert.equal(metaString(f, "general.architecture"), "llama");
    assert.equal(metaNumber(f, "llama.embedding_length"), 64);
    assert.equal(metaNumber(f, "llama.block_count"), 5);
    assert.equal(metaArray(f, "tokenizer.ggml.tokens")?.length, 512);
    const emb = f.tensors.find((t) => t.name === "token_embd.weight");
    assert.deepEqual(emb?.dims, [64, 512]);
    let params = 0;
    for (const t of f.tensors) params += t.elementCount;
    assert.equal(params, 260032);
    const data = f.readTensorData(emb!);
    assert.equal(data.byteLength, 64 * 512 * 4);
    const v = new Float32Array(data.buffer);
    assert.ok(v.every(Number.isFinite));
  } finally {
    f.close();
  }
});
