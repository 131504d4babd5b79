import type { DraftTree } from "./draftTree.js";
import { NO_DRAFT } from "./draftTree.js";
import type { Drafter } from "./drafter.js";
import type { MethodDescriptor } from "./method.js";

/** Method `none`: never guesses, so every step is one plain target pass. The reference. */
export class NoDrafter implements Drafter {
  readonly name = "none";
  begin(): void {}
  propose(): DraftTree {
    return NO_DRAFT;
  }
  observe(): void {}
}

export const noneMethod: MethodDescriptor = {
  name: "none",
  summary: "plain decoding: never guesses (the reference every method is compared with)",
  defaultDraftMax: 0,
  options: {},
  create: () => new NoDrafter(),
};
