import { treeChildren, type DraftTree } from "../drafters/draftTree.js";
import { SpecdecError } from "../errors.js";
import type { Token } from "../types.js";
import type { TargetOutputs, Verdict, Verifier } from "./verifier.js";

/**
 * Temperature 0: the longest path whose every token is the target's argmax after the path
 * before it (lowest token id on a tie); the token is the argmax after that path. The committed
 * tokens are exactly plain greedy decoding's. At each step only children carrying the argmax
 * token can match; when several siblings carry it (duplicates), the one with the longest
 * matching continuation wins, the first in index order on a tie. On a chain this is the
 * familiar rule: accept guesses while they equal the argmax.
 */
export class GreedyVerifier implements Verifier {
  readonly name = "greedy";
  readonly reads = "argmax";

  verify(tree: DraftTree, out: TargetOutputs): Verdict {
    const n = tree.tokens.length;
    const best = out.argmax;
    if (best.length !== n + 1) throw new SpecdecError(`greedy verification: ${n} nodes need ${n + 1} target outputs, got ${best.length}`);
    // A chain (the common case) needs no child lists.
    if (tree.parents.every((p, i) => p === i - 1)) {
      for (let i = 0; i < n; i++) if (tree.tokens[i] !== best[i]) return { path: range(i), token: best[i] as Token, kind: "recovered" };
      return { path: range(n), token: best[n] as Token, kind: "bonus" };
    }
    const { roots, children } = treeChildren(tree);
    // Longest matching path below a slot (reversed: deepest first).
    const longest = (kids: readonly number[], slot: number): { rev: number[]; kind: Verdict["kind"]; token: Token } => {
      const want = best[slot] as Token;
      if (kids.length === 0) return { rev: [], kind: "bonus", token: want };
      let found: { rev: number[]; kind: Verdict["kind"]; token: Token } | undefined;
      for (const c of kids) {
        if (tree.tokens[c] !== want) continue;
        const below = longest(children[c], c + 1);
        if (!found || below.rev.length + 1 > found.rev.length) {
          below.rev.push(c);
          found = below;
        }
      }
      return found ?? { rev: [], kind: "recovered", token: want };
    };
    const r = longest(roots, 0);
    return { path: r.rev.reverse(), token: r.token, kind: r.kind };
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
