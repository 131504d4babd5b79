import type { Draft, Drafter } from "../drafter.js";

/** Method `none`: never guesses, so every step is one plain target pass. The reference. */
export class NoDrafter implements Drafter {
  readonly name = "none";
  async begin(): Promise<void> {}
  async propose(): Promise<Draft> {
    return { tokens: [] };
  }
  observe(): void {}
}
