// Where helper models run (session.ts, --helper-backend): under "auto" a small helper of an
// architecture the built-in engine runs goes there, anything else to the target's backend; a
// given backend wins. A draft model on the built-in engine drafting for a llama.cpp target
// leaves greedy output as plain decoding's.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, ftruncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "../src/decode/speculativeDecode.js";
import { DraftModelDrafter } from "../src/drafters/draftModel.js";
import { NoDrafter } from "../src/drafters/none.js";
import { GgmlType } from "../src/gguf/ggmlTypes.js";
import { kv, writeGguf } from "../src/gguf/writer.js";
import { FixedPlanner } from "../src/planner/planner.js";
import { HELPER_BUILTIN_MAX_BYTES, helperBackendFor, openDrafter, openTarget } from "../src/session.js";
import { PROJECT_ROOT } from "./support/sharedData.js";
import { randomModel } from "./support/randomModel.js";

const DRAFT = join(PROJECT_ROOT, "models", "stories-draft.gguf");

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "specdec-helper-backend-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("auto: a small llama helper runs on the built-in engine; a large one, another architecture or a missing file on the target's backend; a given backend wins", () => {
  const llama = { backend: "llama.cpp" as const };
  assert.equal(helperBackendFor(llama, DRAFT), "builtin");
  assert.equal(helperBackendFor({ ...llama, helperBackend: "auto" }, DRAFT), "builtin");
  assert.equal(helperBackendFor({ ...llama, helperBackend: "llama.cpp" }, DRAFT), "llama.cpp");
  assert.equal(helperBackendFor({ backend: "builtin" }, DRAFT), "builtin");
  assert.equal(helperBackendFor({ backend: "builtin", helperBackend: "llama.cpp" }, DRAFT), "llama.cpp");

  // Past the size limit (a sparse file: the size decides before anything is read).
  const big = join(dir, "big.gguf");
  const fd = openSync(big, "w");
  ftruncateSync(fd, HELPER_BUILTIN_MAX_BYTES + 1);
  closeSync(fd);
  assert.equal(helperBackendFor(llama, big), "llama.cpp");

  // An architecture the built-in engine does not run.
  const model = randomModel({ arch: "llama", dim: 64, ffn: 128, heads: 2, layers: 1, seed: 3 });
  const gpt2 = join(dir, "gpt2.gguf");
  writeGguf(gpt2, { metadata: [kv.string("general.architecture", "gpt2"), ...model.metadata.filter((e) => e.key !== "general.architecture")], tensors: model.tensors(GgmlType.F32) });
  assert.equal(helperBackendFor(llama, gpt2), "llama.cpp");
  const ok = join(dir, "llama.gguf");
  writeGguf(ok, { metadata: model.metadata, tensors: model.tensors(GgmlType.F32) });
  assert.equal(helperBackendFor(llama, ok), "builtin");

  assert.equal(helperBackendFor(llama, join(dir, "missing.gguf")), "llama.cpp");
});

test("the family's draft on the built-in engine drafts for a llama.cpp target: greedy output equals plain decoding", { timeout: 120_000 }, async () => {
  const opened = await openTarget({ backend: "llama.cpp" });
  try {
    const drafter = await openDrafter(opened, "draft");
    assert.ok(drafter instanceof DraftModelDrafter);
    assert.equal(drafter.model.backend, "builtin");
    const explicit = await openDrafter({ ...opened, helperBackend: "llama.cpp" }, "draft");
    assert.equal((explicit as DraftModelDrafter).model.backend, "llama.cpp");
    await explicit.dispose?.();
    for (const prompt of ["Once upon a time, there was a little girl named Lily.", "The dog ran to the park. The dog ran to the park. The dog"]) {
      const plain = await generate(opened.target, new NoDrafter(), { prompt, maxTokens: 64 });
      const spec = await generate(opened.target, drafter, { prompt, maxTokens: 64, planner: new FixedPlanner(4, 4) });
      assert.deepEqual(spec.tokens, plain.tokens, `prompt ${JSON.stringify(prompt)}`);
      assert.ok(spec.stats.acceptedTokens > 0, "the draft's guesses were used");
    }
    await drafter.dispose?.();
  } finally {
    await opened.target.dispose();
  }
});
