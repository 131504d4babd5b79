// The common start of the file targets: pick a seed file and mutate it.

import { mutate, type MutationFocus } from "../mutations.js";
import { CaseRng } from "../random.js";
import { loadSeed, seedPaths, type Seed, type SeedSet } from "../seeds.js";
import { caseId, type BuiltCase, type TargetName } from "./target.js";

export interface MutantStart {
  readonly rng: CaseRng;
  readonly seed: Seed;
  readonly base: Omit<BuiltCase, "params">;
}

/** Case `index` of `target`: a seed from `set`, mutated unless `pristine` (then the seed as is). */
export function mutantCase(target: TargetName, campaignSeed: number, index: number, set: SeedSet, focus: MutationFocus, pristine = false): MutantStart {
  const rng = new CaseRng(campaignSeed, target, index);
  // The model files (small vocabularies, quick to parse) twice as often as the large vocabulary files.
  const paths = seedPaths(set);
  const seed = loadSeed(rng.weighted(paths.map((p) => [p, p.includes("gguf-vocab") ? 1 : 2] as const)));
  if (pristine) return { rng, seed, base: { id: caseId(target, index), target, seedName: seed.name, what: ["unmutated seed"], file: seed.bytes } };
  const m = mutate(rng, seed.bytes, seed.layout, focus);
  return { rng, seed, base: { id: caseId(target, index), target, seedName: seed.name, what: m.what, file: m.bytes } };
}
