import { SpecdecError } from "../errors.js";
import type { Capability } from "../targets/target.js";
import type { Rng, Token } from "../types.js";
import { ROOT, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart, VerifiedPass } from "./drafter.js";
import type { MethodDescriptor } from "./method.js";

export interface LookaheadOptions {
  /** Jacobi window: columns guessed ahead of the last committed token. Default 5. */
  window?: number;
  /** n-gram size: the window keeps N - 1 levels of past guesses. Default 3. */
  ngram?: number;
  /** Verification set: n-grams checked per step. Default 5. */
  verify?: number;
  /** Seed the n-gram pool with the prompt's own n-grams. Default true. */
  seedFromPrompt?: boolean;
}

/**
 * Method `lookahead` (Fu et al. 2024, "Break the sequential dependency of LLM inference using
 * lookahead decoding"), on tree attention. Two branches share one target pass:
 *
 *  - the look-ahead branch: a Jacobi window of N - 1 levels × W columns; column i guesses the
 *    token i + 1 positions after the last committed one. Level 0 is a chain after the last
 *    committed token; the token at (level l, column i) hangs below (l - 1, i - 1), so each
 *    level extends the previous level's guesses by one Jacobi iteration. The target's
 *    predictions after the top level form the next level; the window then slides by the
 *    number of tokens committed.
 *  - the verification branch: up to G n-grams from the pool whose first token is the last
 *    committed token, merged into a trie below the root.
 *
 * Every diagonal of the window plus the target's prediction after it is an N-gram, added to a
 * pool kept across steps (and seeded from the prompt). The look-ahead nodes are ordinary tree
 * nodes, so a correct Jacobi guess is accepted too. All guesses are deterministic (one-hot q):
 * greedy and sampled verification stay exact.
 */
export class LookaheadDrafter implements Drafter {
  readonly name = "lookahead";
  readonly requires: readonly Capability[] = ["treeAttention"];
  readonly window: number;
  readonly ngram: number;
  readonly verify: number;
  private readonly seedFromPrompt: boolean;
  private rng!: Rng;
  private levels: Token[][] = []; // (N - 1, W) past guesses, oldest level first
  private pool = new Map<Token, Token[][]>(); // first token → continuations (N - 1 tokens), newest first
  private layout: { level: number; column: number }[] = []; // window node of each tree node (verification nodes: level -1)
  private fillFrom: readonly Token[] = [];

  constructor(options: LookaheadOptions = {}) {
    this.window = options.window ?? 5;
    this.ngram = options.ngram ?? 3;
    this.verify = options.verify ?? 5;
    this.seedFromPrompt = options.seedFromPrompt ?? true;
    const { window: W, ngram: N, verify: G } = this;
    if (![W, N, G].every(Number.isInteger) || W < 1 || N < 2 || G < 0 || W > 64 || N > 16 || G > 64)
      throw new SpecdecError(`lookahead: window, ngram, verify (${W}, ${N}, ${G}) must be integers with 1 <= window <= 64, 2 <= ngram <= 16, 0 <= verify <= 64`);
  }

  begin(start: DrafterStart): void {
    this.rng = start.rng;
    this.pool = new Map();
    this.fillFrom = start.prompt;
    if (this.seedFromPrompt) for (let j = 0; j + this.ngram <= start.prompt.length; j++) this.addNgram(start.prompt.slice(j, j + this.ngram));
    // Jacobi needs an initial guess: random tokens of the prompt.
    this.levels = Array.from({ length: this.ngram - 1 }, () => Array.from({ length: this.window }, () => this.randomToken()));
  }

  propose(context: readonly Token[], budget: DraftBudget): DraftTree {
    this.fillFrom = context;
    const tokens: Token[] = [];
    const parents: number[] = [];
    this.layout = [];
    // Verification branch first (its n-grams are the likelier guesses, so a small budget keeps
    // them): candidate continuations of the last committed token, as a trie.
    const last = context[context.length - 1];
    const childOf = new Map<string, number>();
    for (const cont of (this.pool.get(last) ?? []).slice(0, this.verify)) {
      let parent = ROOT;
      for (let d = 0; d < cont.length && d < budget.maxDepth; d++) {
        const key = `${parent}:${cont[d]}`;
        let node = childOf.get(key);
        if (node === undefined) {
          if (tokens.length >= budget.maxNodes) break;
          node = tokens.length;
          tokens.push(cont[d]);
          parents.push(parent);
          this.layout.push({ level: -1, column: d });
          childOf.set(key, node);
        }
        parent = node;
      }
    }
    // Look-ahead branch, level by level, in the budget left: (l, i) below (l - 1, i - 1); column 0 below the root.
    const cols = Math.min(this.window, budget.maxDepth);
    const nodeAt: number[][] = this.levels.map(() => []);
    for (let l = 0; l < this.levels.length; l++) {
      for (let i = 0; i < cols && tokens.length < budget.maxNodes; i++) {
        const parent = i === 0 ? ROOT : l === 0 ? nodeAt[0][i - 1] : nodeAt[l - 1][i - 1];
        if (parent === undefined) continue; // its parent did not fit the budget
        nodeAt[l][i] = tokens.length;
        tokens.push(this.levels[l][i]);
        parents.push(parent);
        this.layout.push({ level: l, column: i });
      }
    }
    return { tokens, parents };
  }

  observe(pass: VerifiedPass): void {
    const layout = this.layout;
    this.layout = [];
    // A step the planner declined (no proposal) has no window nodes in its pass: only slide.
    if (pass.tree.tokens.length === 0 || pass.tree.tokens.length !== layout.length) return this.slide(pass.committed.length);
    // The target's prediction after each node (slot node + 1 of the pass).
    const predicted = pass.argmax.subarray(1) as unknown as ArrayLike<Token>;
    const top = this.levels.length - 1;
    // The next level: the target's prediction after (top, i) guesses column i + 1; column 0 is
    // the position right after the last committed token, predicted after the root — that is
    // the first committed token itself.
    const next: Token[] = new Array(this.window);
    next[0] = pass.committed[0];
    layout.forEach(({ level, column }, node) => {
      if (level !== top || column + 1 >= this.window) return;
      next[column + 1] = predicted[node];
      // The diagonal ending at (top, column), plus the prediction after it, is an n-gram.
      const gram: Token[] = [];
      for (let l = 0; l <= top; l++) {
        const c = column - (top - l);
        if (c < 0) return;
        gram.push(this.levels[l][c]);
      }
      gram.push(predicted[node]);
      this.addNgram(gram);
    });
    for (let i = 0; i < this.window; i++) next[i] ??= this.randomToken();
    this.levels = [...this.levels.slice(1), next];
    this.slide(pass.committed.length);
  }

  /** Column i now refers to the position `m` tokens further on. */
  private slide(m: number): void {
    this.levels = this.levels.map((lv) => [...lv.slice(m), ...Array.from({ length: Math.min(m, this.window) }, () => this.randomToken())].slice(0, this.window));
  }

  private addNgram(gram: readonly Token[]): void {
    const [first, ...rest] = gram;
    const list = this.pool.get(first) ?? [];
    const key = rest.join(",");
    const at = list.findIndex((c) => c.join(",") === key);
    if (at >= 0) list.splice(at, 1);
    list.unshift(rest);
    if (list.length > 4 * Math.max(1, this.verify)) list.pop();
    this.pool.set(first, list);
  }

  private randomToken(): Token {
    const src = this.fillFrom;
    return src.length > 0 ? src[Math.floor(this.rng.next() * src.length)] : (0 as Token);
  }
}

export const lookaheadMethod: MethodDescriptor = {
  name: "lookahead",
  summary: "look-ahead decoding: a Jacobi window and n-grams from a pool, verified in one tree pass",
  defaultDraftMax: 8,
  options: {
    lookahead: { kind: "integers", fields: ["window", "ngram", "verify"], description: "Jacobi window W, n-gram size N, verification set V (G in the paper)", default: { window: 5, ngram: 3, verify: 5 } },
  },
  requires: () => ["treeAttention"],
  create: (_ctx, o) => new LookaheadDrafter(o.lookahead as LookaheadOptions),
};
