// Method names → drafters. The place the CLI and the benchmarks agree on what a method is.

import { checkSameVocabulary, inspectModelFile } from "./gguf/modelInfo.js";
import { loadTarget, type Backend, type TargetOptions } from "./backends/loadTarget.js";
import type { AnyDrafter } from "./drafter.js";
import { BlindDrafter } from "./drafters/blindDrafter.js";
import { DraftModelDrafter } from "./drafters/draftModel.js";
import { NoDrafter } from "./drafters/noDrafter.js";
import { PromptLookupDrafter, type PromptLookupOptions } from "./drafters/promptLookup.js";
import { PromptLookupTreeDrafter } from "./drafters/promptLookupTree.js";
import { SpecdecError } from "./errors.js";
import { BuiltinTarget } from "./backends/builtin.js";
import { MedusaDrafter } from "./drafters/medusa.js";
import { LookaheadDrafter, type LookaheadOptions } from "./drafters/lookahead.js";
import { MedusaHeads } from "./medusa/medusaHeads.js";
import type { TreeChoices } from "./draftTree.js";
import type { Target } from "./target.js";

export const METHODS = ["none", "blind", "prompt-lookup", "draft", "medusa", "lookahead"] as const;
export type Method = (typeof METHODS)[number];

/**
 * Draft length per method when none is given, chosen by measurement on the llama.cpp backend
 * (`npm run bench -- --sweep`, docs/measurements.md): there a 9-token pass that reads every
 * position's distribution measured 2.58 ms against 0.67 ms for one token (stories260K), so
 * short drafts win unless guesses are very reliable.
 */
export const METHOD_DRAFT_MAX: Record<Method, number> = { none: 0, blind: 2, "prompt-lookup": 2, draft: 8, medusa: 8, lookahead: 8 };

export function parseMethod(name: string): Method {
  if ((METHODS as readonly string[]).includes(name)) return name as Method;
  throw new SpecdecError(`unknown method '${name}' (choose one of: ${METHODS.join(", ")})`);
}

export interface DrafterConfig {
  method: Method;
  /** The target's model file (its vocabulary is checked against the draft model's). */
  targetPath?: string;
  /** Helper model for method `draft`. */
  draftModelPath?: string;
  /** Backend of the helper model (default llama.cpp) and its options. */
  draftBackend?: Backend;
  draftOptions?: TargetOptions;
  promptLookup?: PromptLookupOptions;
  /** Prompt lookup: continuations merged into a tree (> 1 needs a tree-capable backend). Default 1. */
  candidates?: number;
  /** Method `medusa`: the heads file, and the target they are for (the built-in engine). */
  medusaPath?: string;
  target?: Target;
  /** Method `lookahead`: window, n-gram size, verification set. */
  lookahead?: LookaheadOptions;
  /** Tree shape for methods with static trees (Medusa), e.g. parsed from "0;1;0,0". */
  treeChoices?: TreeChoices;
}

/** Whether a configuration drafts trees (and so needs a backend with tree attention). */
export function draftsTrees(config: Pick<DrafterConfig, "method" | "candidates">): boolean {
  return config.method === "medusa" || config.method === "lookahead" || (config.method === "prompt-lookup" && (config.candidates ?? 1) > 1);
}

export async function createDrafter(config: DrafterConfig): Promise<AnyDrafter> {
  switch (config.method) {
    case "none":
      return new NoDrafter();
    case "blind":
      return new BlindDrafter();
    case "prompt-lookup":
      return draftsTrees(config) ? new PromptLookupTreeDrafter({ ...config.promptLookup, candidates: config.candidates }) : new PromptLookupDrafter(config.promptLookup);
    case "draft": {
      if (!config.draftModelPath) throw new SpecdecError("method 'draft' needs a helper model: --draft-model FILE.gguf");
      const draftInfo = inspectModelFile(config.draftModelPath);
      if (config.targetPath) checkSameVocabulary(inspectModelFile(config.targetPath).vocab, draftInfo.vocab, config.draftModelPath);
      return new DraftModelDrafter(await loadTarget(config.draftBackend ?? "llama.cpp", config.draftModelPath, config.draftOptions));
    }
    case "lookahead":
      return new LookaheadDrafter(config.lookahead);
    case "medusa": {
      if (!config.medusaPath) throw new SpecdecError("method 'medusa' needs its heads: --medusa HEADS.gguf");
      if (!(config.target instanceof BuiltinTarget)) throw new SpecdecError("method 'medusa' reads the target's hidden states: it needs --backend builtin");
      const t = config.target;
      const heads = MedusaHeads.load(config.medusaPath, { hiddenSize: t.hiddenSize, vocabSize: t.vocabSize, vocabFingerprint: t.vocabFingerprint, outputMatrix: t.outputMatrix });
      return new MedusaDrafter(heads, config.treeChoices);
    }
  }
}
