import type { DrafterStart, DraftOutcome, TreeBudget, TreeDrafter } from "../drafter.js";
import { SpecdecError } from "../errors.js";
import { ROOT, type DraftTree } from "../draftTree.js";
import type { Rng, Token } from "../types.js";

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

/** Parse "W,N,G" as given on the command line. */
export function parseLookahead(text: string): Required<Pick<LookaheadOptions, "window" | "ngram" | "verify">> {
  const parts = text.split(",").map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((x) => !Number.isInteger(x)))
    throw new SpecdecError(`--lookahead takes three integers W,N,G (window, n-gram size, verification set), got '${text}'`);
  const [window, ngram, verify] = parts;
  if (window < 1 || ngram < 2 || verify < 0 || window > 64 || ngram > 16 || verify > 64)
    throw new SpecdecError(`--lookahead ${text}: need 1 <= W <= 64, 2 <= N <= 16, 0 <= G <= 64`);
  return { window, ngram, verify };
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
export class LookaheadDrafter implements TreeDrafter {
  readonly name = "lookahead";
  readonly needsPredictions = true;
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
  }

  async begin(start: DrafterStart): Promise<void> {
    this.rng = start.rng;
    this.pool = new Map();
    this.fillFrom = start.prompt;
    if (this.seedFromPrompt) for (let j = 0; j + this.ngram <= start.prompt.length; j++) this.addNgram(start.prompt.slice(j, j + this.ngram));
    // Jacobi needs an initial guess: random tokens of the prompt.
    this.levels = Array.from({ length: this.ngram - 1 }, () => Array.from({ length: this.window }, () => this.randomToken()));
  }

  async proposeTree(context: readonly Token[], budget: TreeBudget): Promise<DraftTree> {
    this.fillFrom = context;
    const tokens: Token[] = [];
    const parents: number[] = [];
    this.layout = [];
    // Look-ahead branch, level by level: (l, i) below (l - 1, i - 1); column 0 below the root.
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
    // Verification branch: candidate continuations of the last committed token, as a trie.
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
    return { tokens, parents };
  }

  observe(outcome: DraftOutcome): void {
    const predicted = outcome.predictions;
    if (!predicted) return;
    const top = this.levels.length - 1;
    // The next level: the target's prediction after (top, i) guesses column i + 1; column 0 is
    // the position right after the last committed token, predicted after the root — that is
    // the first committed token itself.
    const next: Token[] = new Array(this.window);
    next[0] = outcome.committed[0];
    this.layout.forEach(({ level, column }, node) => {
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
    // Slide: column i now refers to the position `committed` tokens further on.
    const m = outcome.committed.length;
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
