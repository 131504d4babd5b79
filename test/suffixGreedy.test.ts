// Greedy suffix decoding gives plain decoding's tokens, on both backends (trees on the built-in
// engine, chains on llama.cpp), with stories260K and the default family's target; the second
// pass over the same prompts drafts from the cross-request cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import { basename } from "node:path";
import { defaultModels } from "../src/defaultModels.js";
import { generate } from "../src/decode/speculativeDecode.js";
import { NoDrafter } from "../src/drafters/none.js";
import { suffixMethod, type SuffixDrafter } from "../src/drafters/suffix.js";
import { openDrafter, openTarget } from "../src/session.js";
import type { Backend } from "../src/targets/loadTarget.js";
import { NEAR_TIE, top2GapAt } from "./support/nearTie.js";
import { RecordingDrafter } from "./support/recorder.js";
import { sharedFile } from "./support/sharedData.js";

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
        if (backend === "builtin") assert.ok(drafter.branched > 0, "the built-in engine verifies trees: some proposals must branch");
        else assert.equal(drafter.nonChains, 0, "llama.cpp verifies chains only");
        for (const [i, x] of tau[1].entries()) assert.ok(x > 4, `the repeat of prompt ${i} is in the cache: tau ${x.toFixed(2)}`);
      } finally {
        await drafter.dispose();
        await target.dispose();
      }
    });
  }
}
