// Making a method's drafter for a target in tests: helper models load on the target's own backend.
import type { Drafter } from "../../src/drafters/drafter.js";
import type { MethodOptionValues } from "../../src/drafters/method.js";
import { createDrafter } from "../../src/methods.js";
import { BuiltinTarget } from "../../src/targets/builtin.js";
import type { Target } from "../../src/targets/target.js";

export async function drafterFor(target: Target, method: string, options: MethodOptionValues = {}): Promise<Drafter> {
  const loadModel = async (path: string): Promise<Target> => {
    if (target instanceof BuiltinTarget) return BuiltinTarget.load(path);
    const { LlamaCppTarget } = await import("../../src/targets/llamaCpp/llamaCppTarget.js");
    return LlamaCppTarget.load(path);
  };
  return createDrafter(method, { target, loadModel }, options);
}
