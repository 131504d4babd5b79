// node-llama-cpp's own decoding loop as a peer, on the same file and prompts: plain, and with
// its token predictors (InputLookupTokenPredictor, DraftSequenceTokenPredictor with a draft model).
import type { Token } from "../../types.js";

export type NodeLlamaCppPeer = "plain" | "InputLookupTokenPredictor" | "DraftSequenceTokenPredictor";

export interface NodeLlamaCppRun {
  readonly tokensPerSecond: number;
  /** Generated tokens per prompt (end of generation excluded). */
  readonly outputs: readonly Token[][];
  readonly validated: number;
  readonly refuted: number;
}

/** Greedy generations of `maxTokens` per prompt through node-llama-cpp's loop (threads given: its default is pathological here). */
export async function runNodeLlamaCpp(peer: NodeLlamaCppPeer, args: { model: string; draftModel?: string; prompts: readonly string[]; maxTokens: number; threads: number; contextSize: number; draftMax?: number }): Promise<NodeLlamaCppRun> {
  const nlc = await import("node-llama-cpp");
  const llama = await nlc.getLlama({ gpu: false, build: "never", logLevel: nlc.LlamaLogLevel.error, logger: () => {} });
  const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: args.contextSize, sequences: 1, threads: args.threads });
  const disposables: { dispose(): Promise<void> }[] = [ctx, model];
  try {
    let predictor: import("node-llama-cpp").TokenPredictor | undefined;
    if (peer === "InputLookupTokenPredictor") predictor = new nlc.InputLookupTokenPredictor();
    if (peer === "DraftSequenceTokenPredictor") {
      const draft = await llama.loadModel({ modelPath: args.draftModel!, gpuLayers: 0 });
      const draftCtx = await draft.createContext({ contextSize: args.contextSize, sequences: 1, threads: args.threads });
      disposables.unshift(draftCtx, draft);
      predictor = new nlc.DraftSequenceTokenPredictor(draftCtx.getSequence(), { maxTokens: args.draftMax ?? 4 });
    }
    const seq = ctx.getSequence({ tokenPredictor: predictor });
    let tokens = 0, ms = 0, validated = 0, refuted = 0;
    const outputs: Token[][] = [];
    for (const text of args.prompts) {
      await seq.clearHistory();
      const prompt = model.tokenize(text, false);
      if (model.tokens.shouldPrependBosToken && model.tokens.bos !== null) prompt.unshift(model.tokens.bos);
      // What LlamaCompletion does: the predictor looks up n-grams of the input it is given.
      predictor?.updateInputTokens?.(prompt.slice());
      await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
      const out: Token[] = [];
      const t0 = performance.now();
      for await (const t of seq.evaluate(prompt.slice(-1), { temperature: 0 })) {
        if (model.isEogToken(t)) break;
        out.push(t as unknown as Token);
        if (out.length >= args.maxTokens) break;
      }
      ms += performance.now() - t0;
      tokens += out.length;
      outputs.push(out);
      validated += seq.tokenPredictions.validated;
      refuted += seq.tokenPredictions.refuted;
    }
    return { tokensPerSecond: ms > 0 ? (tokens * 1000) / ms : 0, outputs, validated, refuted };
  } finally {
    for (const d of disposables) await d.dispose();
  }
}
