// The cross-request cache of suffix decoding: earlier requests' prompts and outputs, one suffix
// automaton over all of them, bounded by a token cap and evicted least recently used first.
// One cache serves every drafter made for the same opened target (MethodContext.store), so a
// server's slots and a benchmark run share it.

import { SpecdecError } from "../errors.js";
import type { Token } from "../types.js";
import { SuffixAutomaton, type SuffixMatch } from "./suffixAutomaton.js";

/**
 * When the cap would be exceeded, least recently used documents are dropped until the cache
 * holds at most this share of the cap, and the automaton is rebuilt once from what is left
 * (an automaton cannot forget a document). Each rebuild then costs O(cap) and happens at most
 * once per cap / 4 inserted tokens: insertion stays amortised O(1) per token.
 */
const EVICT_TO = 0.75;

/** A document: its span in the automaton's text (separator excluded) and when it was last used. */
interface CachedDocument {
  start: number;
  length: number;
  lastUse: number;
}

export interface SuffixCacheStats {
  /** Documents (one per finished generation: its prompt and output) held now. */
  readonly documents: number;
  /** Tokens held now (at most `capTokens`). */
  readonly tokens: number;
  readonly capTokens: number;
  /** Bytes the automaton's arrays hold now. */
  readonly bytes: number;
  /** Documents added and evicted since the cache was made. */
  readonly added: number;
  readonly evicted: number;
  /** Proposals looked up in the cache, and those drafted from it. */
  readonly lookups: number;
  readonly hits: number;
}

export class SuffixCache {
  private sam: SuffixAutomaton;
  private docs: CachedDocument[] = []; // in text order
  private tokens = 0;
  private clock = 0;
  private added = 0;
  private evicted = 0;
  /** Counted by the drafters that use the cache. */
  lookups = 0;
  hits = 0;
  /** Changes whenever the text changes: a match made before must be made again. */
  version = 0;

  constructor(readonly capTokens: number) {
    if (!Number.isInteger(capTokens) || capTokens < 0) throw new SpecdecError(`suffix cache: the token cap must be an integer >= 0, got ${capTokens}`);
    this.sam = new SuffixAutomaton(Math.min(capTokens, 4096));
  }

  /** The automaton over every cached document (read it, never extend it: use `add`). */
  get automaton(): SuffixAutomaton {
    return this.sam;
  }

  /**
   * Add a finished generation (prompt and output) as one document; a document longer than the
   * cap keeps its last `capTokens` tokens. Evicts least recently used documents first when the
   * cap would be exceeded.
   */
  add(tokens: readonly Token[]): void {
    if (this.capTokens === 0 || tokens.length === 0) return;
    const doc = tokens.length > this.capTokens ? tokens.slice(tokens.length - this.capTokens) : tokens;
    if (this.tokens + doc.length > this.capTokens) this.evict(Math.floor(this.capTokens * EVICT_TO) - doc.length);
    const start = this.sam.length;
    for (const t of doc) this.sam.extend(t);
    this.sam.endDocument();
    this.docs.push({ start, length: doc.length, lastUse: ++this.clock });
    this.tokens += doc.length;
    this.added++;
    this.version++;
  }

  /** Mark the documents holding these text positions as used now (they drafted a proposal). */
  touch(positions: readonly number[]): void {
    const now = ++this.clock;
    for (const p of positions) {
      // The last document starting at or before p.
      let lo = 0, hi = this.docs.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (this.docs[mid].start <= p) lo = mid;
        else hi = mid - 1;
      }
      if (hi >= 0) this.docs[lo].lastUse = now;
    }
  }

  /** The cached documents' tokens, oldest first in text order (for tests and inspection). */
  documents(): Token[][] {
    return this.docs.map((d) => Array.from({ length: d.length }, (_, i) => this.sam.tokenAt(d.start + i) as Token));
  }

  /** Match a whole text from scratch: the longest suffix of `tokens` that occurs in the cache. */
  match(tokens: readonly Token[], out: SuffixMatch): SuffixMatch {
    out.state = 0;
    out.length = 0;
    for (const t of tokens) this.sam.step(out, t);
    return out;
  }

  stats(): SuffixCacheStats {
    return { documents: this.docs.length, tokens: this.tokens, capTokens: this.capTokens, bytes: this.sam.size().bytes, added: this.added, evicted: this.evicted, lookups: this.lookups, hits: this.hits };
  }

  /** Drop least recently used documents until at most `target` tokens remain, then rebuild. */
  private evict(target: number): void {
    const byUse = [...this.docs].sort((a, b) => a.lastUse - b.lastUse);
    const dropped = new Set<CachedDocument>();
    let tokens = this.tokens;
    for (const d of byUse) {
      if (tokens <= target) break;
      dropped.add(d);
      tokens -= d.length;
    }
    const kept = this.docs.filter((d) => !dropped.has(d));
    const old = this.sam;
    this.sam = new SuffixAutomaton(Math.min(this.capTokens, tokens + 4096));
    for (const d of kept) {
      const start = this.sam.length;
      for (let i = 0; i < d.length; i++) this.sam.extend(old.tokenAt(d.start + i) as Token);
      this.sam.endDocument();
      d.start = start;
    }
    this.docs = kept;
    this.tokens = tokens;
    this.evicted += dropped.size;
    this.version++;
  }
}
