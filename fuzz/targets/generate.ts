// Targets "builtin" and "llamacpp": load a mutated model on a backend, as a user would (the
// model's own context size), and generate a few greedy tokens. A model that loads must give a
// finite next-token distribution; a pristine model (one case in fifty) must load and run.
// One builtin case in ten mutates the committed Medusa heads instead and loads them for the
// committed target (whose helper they are): heads that load must give finite logits.

import type { CaseVerdict } from "../outcome.js";
import { randomText } from "../texts.js";
import { mutate } from "../mutations.js";
import { CaseRng } from "../random.js";
import { loadSeed } from "../seeds.js";
import { defaultModels, loadAndGenerate, loadMedusaAndPredict, type FuzzBackend } from "../specdec.js";
import { mutantCase } from "./mutantCase.js";
import { caseId, type BuiltCase, type FuzzTarget, type TargetName } from "./target.js";

const MAX_TOKENS = 4;

/** The committed Medusa heads, mutated, to be loaded for the committed target. */
function medusaCase(name: TargetName, seed: number, index: number): BuiltCase {
  const rng = new CaseRng(seed, name, index);
  const heads = loadSeed(defaultModels().medusa);
  const m = mutate(rng, heads.bytes, heads.layout, { nonFinite: 2 });
  return { id: caseId(name, index), target: name, seedName: heads.name, what: m.what, file: m.bytes, params: { medusa: true } };
}

function generateTarget(name: TargetName, backend: FuzzBackend, timeLimitMs: number): FuzzTarget {
  return {
    name,
    timeLimitMs,
    build(seed, index) {
      if (backend === "builtin" && index % 10 === 5) return medusaCase(name, seed, index);
      const pristine = index % 50 === 0;
      const { rng, base } = mutantCase(name, seed, index, "models", { nonFinite: 2 }, pristine);
      const prompt = pristine || rng.chance(0.7) ? "Once upon a time" : randomText(rng, [], 8);
      return { ...base, what: [...base.what, `prompt ${JSON.stringify(prompt)}`], params: { prompt, pristine } };
    },
    async run(c, file): Promise<CaseVerdict> {
      const { prompt, pristine, medusa } = c.params as { prompt: string; pristine: boolean; medusa?: boolean };
      if (medusa) {
        if (!(await loadMedusaAndPredict(file!, defaultModels().target))) return { outcome: "wrong", detail: "non-finite Medusa logits" };
        return { outcome: "parsed", detail: "Medusa heads loaded and ran" };
      }
      try {
        const r = await loadAndGenerate(backend, file!, prompt, MAX_TOKENS);
        if (!r.finite) return { outcome: "wrong", detail: `non-finite next-token distribution (generated ${r.tokens.join(",")})` };
        return { outcome: "parsed", detail: `generated ${r.tokens.length} tokens` };
      } catch (e) {
        if (pristine) return { outcome: "wrong", detail: `the unmutated seed failed: ${String((e as Error)?.message ?? e).slice(0, 200)}` };
        throw e;
      }
    },
  };
}

export const builtinTarget = generateTarget("builtin", "builtin", 30_000);
export const llamaCppTarget = generateTarget("llamacpp", "llama.cpp", 60_000);
