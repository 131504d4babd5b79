import { SpecdecError } from "../errors.js";
import type { Capability } from "../targets/target.js";
import type { Token } from "../types.js";
import { ContinuationTrie, type ScoredTree } from "./continuationTree.js";
import { NO_DRAFT, type DraftTree } from "./draftTree.js";
import type { DraftBudget, Drafter, DrafterStart, VerifiedPass } from "./drafter.js";
import type { MethodDescriptor } from "./method.js";
import { continuation } from "./ngramIndex.js";
import { SuffixAutomaton, type SuffixMatch } from "./suffixAutomaton.js";
import { SuffixCache, type CacheMatcher } from "./suffixCache.js";

export interface SuffixOptions {
  /**
   * Most root-to-leaf paths in a proposal. Default 4; a target without tree attention always
   * gets one path (a chain).
   */
  candidates?: number;
  /** Guesses per matched token: a match of m tokens drafts at most specFactor * m nodes. Default 1. */
  specFactor?: number;
  /** Nodes with a smaller share of the occurrences are left out. Default 0.1. */
  minProbability?: number;
  /** Occurrences of the matched suffix counted per proposal (where there are more, the suffix-link walk takes the newest links first). Default 64. */
  maxOccurrences?: number;
  /** Whether the target verifies trees; without it every proposal is a chain. Default true. */
  treeAttention?: boolean;
}

/** What one drafter did with its proposals. */
export interface SuffixDrafterStats {
  readonly proposals: number;
  /** Proposals drafted from this request's own text, and tokens of them accepted. */
  readonly fromRequest: number;
  readonly acceptedFromRequest: number;
  /** Proposals drafted from the cross-request cache, and tokens of them accepted. */
  readonly fromCache: number;
  readonly acceptedFromCache: number;
}

type Source = "request" | "cache";

/** A source's proposal, its score, and how long the match it continues is. */
interface Proposal extends ScoredTree {
  readonly matchLength: number;
}

/**
 * Whether proposal a beats b: a match at least twice as long wins (it is far stronger evidence
 * than the counts, which treat one occurrence as certainty: a repeated request's short cached
 * continuation must beat a long one copied from its prompt), else the higher expected number of
 * accepted tokens, and at (nearly) equal ones the longer match. Chosen by measurement
 * (docs/measurements.md).
 */
function better(a: Proposal, b: Proposal): boolean {
  if (a.matchLength >= 2 * b.matchLength) return true;
  if (b.matchLength >= 2 * a.matchLength) return false;
  const EQUAL = 1e-9;
  return a.score > b.score + EQUAL || (a.score > b.score - EQUAL && a.matchLength > b.matchLength);
}

/**
 * Method `suffix` (SuffixDecoding, Oliaro et al. 2024): find the longest suffix of the context
 * that occurred before — in this request's prompt and output (a suffix automaton extended as
 * tokens are committed) and in a cache of earlier requests' prompts and outputs (shared by every
 * drafter of the same target) — and guess what followed it there. The continuations of its
 * occurrences form a trie scored by frequency; the proposal is the most probable part of it,
 * at most specFactor nodes per matched token (a longer match is trusted further), within the
 * budget, most likely child first. The request and the cache each propose a tree; the one with
 * the much longer match, else the higher expected number of accepted tokens, is used. Guesses
 * are deterministic (one-hot q): exact under greedy and rejection-sampling verification.
 *
 * Cost per proposal: the longest matches are kept up to date as tokens are committed (amortised
 * O(1) per token), then O(maxOccurrences × depth) to count continuations, whatever the size of
 * the text or the cache.
 *
 * A generation's text goes into the cache when it ends: at the next `begin`, or at `dispose`.
 */
export class SuffixDrafter implements Drafter {
  readonly name = "suffix";
  readonly requires: readonly Capability[] = [];
  readonly candidates: number;
  readonly specFactor: number;
  readonly minProbability: number;
  readonly maxOccurrences: number;

  private request = new SuffixAutomaton();
  private text: Token[] = []; // this request's prompt and everything committed
  private started = false;
  private readonly requestMatch: SuffixMatch = { state: 0, length: 0 };
  private readonly cacheMatch: CacheMatcher | undefined;
  private readonly trie = new ContinuationTrie();
  private readonly positions: number[] = []; // occurrence end positions
  private lastSource: Source | undefined;
  private counts = { proposals: 0, fromRequest: 0, acceptedFromRequest: 0, fromCache: 0, acceptedFromCache: 0 };

  /** @param cache earlier requests' text (shared); undefined = this request's text only. */
  constructor(readonly cache: SuffixCache | undefined, options: SuffixOptions = {}) {
    this.specFactor = options.specFactor ?? 1;
    this.minProbability = options.minProbability ?? 0.1;
    this.maxOccurrences = options.maxOccurrences ?? 64;
    this.candidates = options.treeAttention === false ? 1 : options.candidates ?? 4;
    for (const [name, v] of [["candidates", this.candidates], ["specFactor", this.specFactor], ["maxOccurrences", this.maxOccurrences]] as const)
      if (!Number.isInteger(v) || v < 1) throw new SpecdecError(`suffix: ${name} must be an integer >= 1, got ${v}`);
    if (!(this.minProbability >= 0 && this.minProbability <= 1)) throw new SpecdecError(`suffix: minProbability must be between 0 and 1, got ${this.minProbability}`);
    this.cacheMatch = cache?.matcher();
  }

  begin(start: DrafterStart): void {
    this.flush();
    this.restart(start.prompt);
  }

  propose(context: readonly Token[], budget: DraftBudget): DraftTree {
    this.sync(context);
    this.lastSource = undefined;
    if (budget.maxDepth <= 0 || budget.maxNodes <= 0) return NO_DRAFT;
    this.counts.proposals++;
    let best: Proposal | undefined;
    const own = this.fromRequest(context, budget);
    if (own.score > 0) {
      best = own;
      this.lastSource = "request";
    }
    if (this.cache && this.cacheMatch && !this.cache.empty) {
      this.cache.lookups++;
      const cached = this.fromCache(this.cacheMatch, budget);
      if (cached.score > 0 && (!best || better(cached, best))) {
        best = cached;
        this.lastSource = "cache";
        this.cache.hits++;
        this.cacheMatch.useFound();
      }
    }
    if (this.lastSource === "request") this.counts.fromRequest++;
    if (this.lastSource === "cache") this.counts.fromCache++;
    return best?.tree ?? NO_DRAFT;
  }

  observe(pass: VerifiedPass): void {
    if (this.lastSource === "request") this.counts.acceptedFromRequest += pass.path.length;
    if (this.lastSource === "cache") this.counts.acceptedFromCache += pass.path.length;
    this.lastSource = undefined;
    // A pass over another context than ours is caught up with at the next proposal.
    if (this.started && pass.contextLength === this.text.length) for (const t of pass.committed) this.push(t);
  }

  async dispose(): Promise<void> {
    this.flush();
  }

  stats(): SuffixDrafterStats {
    return { ...this.counts };
  }

  /** One line for statistics: what the proposals came from, and the cache's size. */
  describe(): string {
    const c = this.counts;
    const own = `${c.proposals} proposals: ${c.fromCache} from the cache (${c.acceptedFromCache} tokens accepted), ${c.fromRequest} from the request (${c.acceptedFromRequest} accepted)`;
    if (!this.cache) return `suffix: ${own}; no cross-request cache`;
    const s = this.cache.stats();
    return `suffix: ${own}; cache shared by this target's drafters: ${s.documents} requests, ${s.tokens} tokens (${s.indexedTokens} indexed, cap ${s.capTokens}, ${(s.bytes / 2 ** 20).toFixed(1)} MiB), ${s.evicted} evicted`;
  }

  // ---- the two sources ---------------------------------------------------------------------

  /** The continuations of the longest suffix that occurred earlier in this request. */
  private fromRequest(context: readonly Token[], budget: DraftBudget): Proposal {
    const m = this.request.longestRepeatedSuffix(this.requestMatch);
    const maxNodes = this.maxNodesFor(m.length, budget);
    this.trie.clear();
    if (maxNodes > 0) {
      const depth = Math.min(budget.maxDepth, maxNodes);
      // One more than wanted: the occurrence at the end of the text has no continuation.
      const ends = this.request.occurrences(m.state, this.maxOccurrences + 1, this.positions).sort((a, b) => b - a); // newest first
      for (const end of ends) if (end < context.length && this.trie.occurrences < this.maxOccurrences) this.trie.add(continuation(context, end, depth));
    }
    return { ...this.trie.select(this.limits(maxNodes)), matchLength: m.length };
  }

  /** The continuations of the longest suffix of the context that occurs in the cache. */
  private fromCache(matcher: CacheMatcher, budget: DraftBudget): Proposal {
    const matchLength = matcher.longest();
    const maxNodes = this.maxNodesFor(matchLength, budget);
    this.trie.clear();
    if (maxNodes > 0) matcher.addContinuations(Math.min(budget.maxDepth, maxNodes), this.maxOccurrences, this.trie);
    return { ...this.trie.select(this.limits(maxNodes)), matchLength };
  }

  private maxNodesFor(matchLength: number, budget: DraftBudget): number {
    return Math.min(budget.maxNodes, this.specFactor * matchLength);
  }

  private limits(maxNodes: number) {
    return { maxNodes, maxLeaves: this.candidates, minProbability: this.minProbability };
  }

  // ---- this request's text -----------------------------------------------------------------

  private restart(prompt: readonly Token[]): void {
    this.request.clear();
    this.text = [];
    this.started = true;
    this.cacheMatch?.reset();
    for (const t of prompt) this.push(t);
  }

  private push(token: Token): void {
    this.request.extend(token);
    this.text.push(token);
    this.cacheMatch?.push(token);
  }

  /** Follow the context: extend by what it added; start over if it is not an extension of our text. */
  private sync(context: readonly Token[]): void {
    const n = this.text.length;
    if (!this.started || context.length < n || (n > 0 && context[n - 1] !== this.text[n - 1])) this.restart(context);
    else for (let i = n; i < context.length; i++) this.push(context[i]);
  }

  /** The finished generation goes into the cache, once. */
  private flush(): void {
    if (this.started && this.cache) this.cache.add(this.text);
    this.started = false;
    this.text = [];
  }
}

/** The cache of the drafters of one opened target with this cap (one per cap), made on first use. */
export function sharedSuffixCache(store: Map<string, unknown> | undefined, capTokens: number): SuffixCache | undefined {
  if (capTokens === 0) return undefined;
  const key = `suffix:cache:${capTokens}`;
  const found = store?.get(key);
  if (found instanceof SuffixCache) return found;
  const cache = new SuffixCache(capTokens);
  store?.set(key, cache);
  return cache;
}

export const DEFAULT_SUFFIX_CACHE_TOKENS = 1_000_000;

export const suffixMethod: MethodDescriptor = {
  name: "suffix",
  summary: "SuffixDecoding: continuations of the longest match of the context's end in this request and in a cache of earlier requests, scored by frequency; a tree where the target has tree attention",
  defaultDraftMax: 8,
  options: {
    suffixCacheTokens: { kind: "integer", description: "cross-request cache cap in tokens (earlier requests' prompts and outputs, least recently used evicted first; 0 = none)", default: DEFAULT_SUFFIX_CACHE_TOKENS, min: 0, max: 1 << 26 },
    candidates: { kind: "integer", description: "continuations merged into a tree verified in one pass (a chain on a target without tree attention)", default: 4, min: 1, max: 64 },
    suffixSpecFactor: { kind: "integer", description: "guesses per matched token: a match of m tokens drafts at most this many times m", default: 1, min: 1, max: 64 },
  },
  requires: () => [],
  create: (ctx, o) =>
    new SuffixDrafter(sharedSuffixCache(ctx.store, o.suffixCacheTokens as number), {
      candidates: o.candidates as number,
      specFactor: o.suffixSpecFactor as number,
      treeAttention: ctx.target.capabilities.treeAttention,
    }),
};
