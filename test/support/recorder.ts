// A drafter wrapper that keeps what the drafter it wraps proposed and what was accepted.
import { treeChildren, type DraftTree } from "../../src/drafters/draftTree.js";
import type { DraftBudget, Drafter, DrafterStart, VerifiedPass } from "../../src/drafters/drafter.js";
import type { Token } from "../../src/types.js";

export class RecordingDrafter<D extends Drafter = Drafter> implements Drafter {
  readonly name: string;
  readonly requires: Drafter["requires"];
  /** Proposals with more than one node at some position. */
  branched = 0;
  proposals = 0;
  /** Proposals that were not chains. */
  nonChains = 0;
  /** The longest accepted path. */
  deepest = 0;
  constructor(readonly inner: D) {
    this.name = inner.name;
    this.requires = inner.requires;
  }
  begin(s: DrafterStart) {
    return this.inner.begin(s);
  }
  async propose(context: readonly Token[], budget: DraftBudget): Promise<DraftTree> {
    const t = await this.inner.propose(context, budget);
    this.proposals++;
    const { roots, children } = treeChildren(t);
    if (roots.length > 1 || children.some((c) => c.length > 1)) this.branched++;
    if (!t.parents.every((p, i) => p === i - 1)) this.nonChains++;
    return t;
  }
  observe(pass: VerifiedPass) {
    this.deepest = Math.max(this.deepest, pass.path.length);
    return this.inner.observe(pass);
  }
  async dispose() {
    await this.inner.dispose?.();
  }
}
