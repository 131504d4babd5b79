// Acceptance rules by name, as the CLI (--acceptance) and the server (speculative.acceptance)
// name them; none = the loop's default for the temperature (greedy at 0, else rejection sampling).
import { GreedyVerifier } from "./greedy.js";
import { RejectionSampler } from "./rejectionSampler.js";
import { TypicalAcceptanceVerifier } from "./typicalAcceptance.js";
import type { Verifier } from "./verifier.js";

export const ACCEPTANCE_RULES = ["greedy", "sample", "typical"] as const;
export type AcceptanceRule = (typeof ACCEPTANCE_RULES)[number];

/** The verifier a rule asks for; undefined for none (the default for the temperature). */
export function verifierFor(rule: AcceptanceRule | undefined): Verifier | undefined {
  switch (rule) {
    case "greedy":
      return new GreedyVerifier();
    case "sample":
      return new RejectionSampler();
    case "typical":
      return new TypicalAcceptanceVerifier();
    default:
      return undefined;
  }
}
