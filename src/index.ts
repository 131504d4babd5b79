// The public API, in the order data flows: prompt → tokens → drafter → target pass → verifier
// → commit / roll back → stream. The llama.cpp target's module (native code) loads only when
// `loadTarget("llama.cpp", ...)` asks for it.
export * from "./types.js";
export * from "./errors.js";
export * from "./sampling/rng.js";
export * from "./sampling/samplingSettings.js";
export * from "./sampling/shapeDistribution.js";
export * from "./targets/target.js";
export * from "./targets/loadTarget.js";
export * from "./targets/builtin.js";
export type { NodeLlamaCppTarget, NodeLlamaCppOptions } from "./targets/nodeLlamaCpp.js";
export * from "./drafters/drafter.js";
export * from "./drafters/draftTree.js";
export * from "./drafters/method.js";
export * from "./drafters/none.js";
export * from "./drafters/blind.js";
export * from "./drafters/ngramIndex.js";
export * from "./drafters/promptLookup.js";
export * from "./drafters/draftModel.js";
export * from "./drafters/lookahead.js";
export * from "./drafters/medusa.js";
export * from "./drafters/medusaHeads.js";
export * from "./verifiers/verifier.js";
export * from "./verifiers/greedy.js";
export * from "./verifiers/rejectionSampler.js";
export * from "./verifiers/typicalAcceptance.js";
export * from "./decode/speculativeDecode.js";
export * from "./decode/stats.js";
export * from "./decode/textStream.js";
export * from "./methods.js";
export * from "./session.js";
export * from "./compare.js";
export * from "./defaultModels.js";
export * from "./gguf/reader.js";
export * from "./gguf/writer.js";
export * from "./gguf/modelInfo.js";
export * from "./gguf/ggmlTypes.js";
export * from "./tokenizer/index.js";
