// Greedy suffix decoding gives plain decoding's tokens, on both backends (trees on both: each has
// tree attention), with stories260K and the default family's target; the second
// pass over the same prompts drafts from the cross-request cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { basename, join } from "node:path";
import { defaultModels } from "../src/defaultModels.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { NoDrafter } from "../src/drafters/none.js";
import { suffixMethod, type SuffixDrafter } from "../src/drafters/suffix.js";
import { openDrafter, openTarget } from "../src/session.js";
import type { Backend } from "../src/targets/loadTarget.js";
import { NEAR_TIE, top2GapAt } from "./support/nearTie.js";
import { RecordingDrafter } from "./support/recorder.js";
import { PROJECT_ROOT, sharedFile } from "./support/sharedData.js";

const PROMPTS = [
  "Once upon a time",
  "Tom and his dog went to the park. They played with a ball.",
  "Lily liked to draw. One day she drew a big red sun. Her mom said",
  "Once upon a time, there was a little boy named Ben. Ben had a toy car. He loved his car. One day, the car broke.\n\nOnce upon a time, there was a little boy named Ben.",
];
const MAX_TOKENS = 128;

for (const backend of ["builtin", "llama.cpp"] as const satisfies readonly Backend[]) {
  for (const model of [sharedFile("models", "stories260K.gguf"), defaultModels().target]) {
    test(`greedy suffix decoding gives plain decoding's tokens: ${backend}, ${basename(model)}, each prompt twice (the second time from the cache)`, async (t) => {
      const opened = await openTarget({ model, backend });
      const target = opened.target;
      const drafter = new RecordingDrafter((await openDrafter(opened, "suffix")) as SuffixDrafter);
      try {
        const plain = [];
        for (const prompt of PROMPTS) plain.push(await generate(target, new NoDrafter(), { prompt, maxTokens: MAX_TOKENS }));
        let differing = 0;
        const tau: number[][] = [[], []];
        for (const pass of [0, 1]) {
          for (const [i, prompt] of PROMPTS.entries()) {
            const got = await generate(target, drafter, { prompt, maxTokens: MAX_TOKENS, draftMax: suffixMethod.defaultDraftMax });
            tau[pass].push(got.stats.tau);
            const want = plain[i].tokens;
            if (got.tokens.join() === want.join()) continue;
            // Only llama.cpp may differ, and only where the target's two best tokens nearly tie.
            assert.equal(backend, "llama.cpp", `builtin engine: pass ${pass + 1} on ${JSON.stringify(prompt)} differs from plain decoding`);
            differing++;
            let at = 0;
            while (got.tokens[at] === want[at]) at++;
            const gap = await top2GapAt(target, prompt, want, at);
            t.diagnostic(`pass ${pass + 1}, prompt ${i}: first difference at token ${at}, top-2 gap ${gap}`);
            assert.ok(gap < NEAR_TIE, `pass ${pass + 1} on ${JSON.stringify(prompt)} differs at token ${at} where the top-2 gap is ${gap} (not a near-tie)`);
          }
        }
        t.diagnostic(`tau first pass ${tau[0].map((x) => x.toFixed(2)).join(" ")}, repeats ${tau[1].map((x) => x.toFixed(2)).join(" ")}; ${drafter.inner.describe()}`);
        assert.ok(differing <= 1, `${differing} outputs differ from plain decoding: near-ties must be rare`);
        assert.ok(drafter.branched > 0, `${backend} verifies trees: some proposals must branch`);
        for (const [i, x] of tau[1].entries()) assert.ok(x > 4, `the repeat of prompt ${i} is in the cache: tau ${x.toFixed(2)}`);
      } finally {
        await drafter.dispose();
        await target.dispose();
      }
    });
  }
}

test("specdec generate --method suffix gives plain decoding's tokens on both backends; bad options are one-line errors", () => {
  const model = sharedFile("models", "stories260K.gguf");
  // A fixed budget: the cost model may decline to guess on this compute-bound model.
  const run = (...args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, "bin", "specdec.js"), "generate", "--model", model, "--max-tokens", "64", "--draft-max", "8", "--prompt", PROMPTS[3], ...args], { encoding: "utf8" });
  for (const backend of ["builtin", "llama.cpp"]) {
    const plain = JSON.parse(run("--method", "none", "--backend", backend, "--json").stdout).tokens;
    const r = run("--method", "suffix", "--backend", backend, "--json");
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    // Exact on the built-in engine; llama.cpp may differ at near-ties (checked with the library above).
    if (backend === "builtin") assert.deepEqual(got.tokens, plain);
    assert.ok(got.stats.acceptedTokens > 0, `${backend}: the retell prompt must be drafted from`);
  }
  for (const [args, pattern] of [
    [["--suffix-spec-factor", "0"], /--suffix-spec-factor .* must be between 1 and 64/],
    [["--suffix-cache-tokens", "-1"], /--suffix-cache-tokens .* must be between 0 and/],
    [["--candidates", "0"], /--candidates .* must be between 1 and 64/],
  ] as const) {
    const r = run("--method", "suffix", ...args);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^specdec: error: /);
    assert.match(r.stderr, pattern);
  }
});
