// The cross-request cache of suffix decoding: earlier requests' prompts and outputs, bounded by a
// token cap and evicted least recently used first. One cache serves every drafter made for the
// same opened target (MethodContext.store), so a server's slots and a benchmark run share it.
//
// An automaton cannot forget a document, so the cache is kept in generations: segments of at
// most cap / 4 tokens, each with its own suffix automaton, oldest first; new documents go into
// the newest. A document that drafts a proposal is copied into the newest segment at the next
// `add`, in the order of last use (its old copy is dead: skipped by lookups, counted against the
// cap until its segment goes). So every live document in a segment was last used before any in
// a newer one, and eviction drops whole oldest segments: least recently used first, in O(1),
// never a rebuild (which would stall for seconds at a cap of 1M tokens: docs/measurements.md).

import { SpecdecError } from "../errors.js";
import type { Token } from "../types.js";
import type { ContinuationTrie } from "./continuationTree.js";
import { SuffixAutomaton, type SuffixMatch } from "./suffixAutomaton.js";

/** Segments per cap: a segment holds at most cap / SEGMENTS tokens (unless one document is larger). */
const SEGMENTS = 4;

interface CachedDocument {
  readonly segment: Segment;
  /** Its span in the segment's text (separator excluded). */
  readonly start: number;
  readonly length: number;
  /** Copied into a newer segment: this copy is skipped. */
  dead: boolean;
}

class Segment {
  readonly sam: SuffixAutomaton;
  readonly docs: CachedDocument[] = []; // in text order
  /** Tokens indexed (live and dead, separators excluded). */
  tokens = 0;
  /** Changes whenever the text changes: a match made before must be made again. */
  version = 0;
  constructor(expectedTokens: number) {
    this.sam = new SuffixAutomaton(expectedTokens);
  }

  add(tokens: readonly Token[]): void {
    const start = this.sam.length;
    for (const t of tokens) this.sam.extend(t);
    this.sam.endDocument();
    this.docs.push({ segment: this, start, length: tokens.length, dead: false });
    this.tokens += tokens.length;
    this.version++;
  }

  /** The document holding a text position. */
  docAt(position: number): CachedDocument {
    let lo = 0, hi = this.docs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.docs[mid].start <= position) lo = mid;
      else hi = mid - 1;
    }
    return this.docs[lo];
  }

  text(d: CachedDocument): Token[] {
    return Array.from({ length: d.length }, (_, i) => this.sam.tokenAt(d.start + i) as Token);
  }
}

export interface SuffixCacheStats {
  /** Documents (one per finished generation: its prompt and output) held now. */
  readonly documents: number;
  /** Tokens of those documents. */
  readonly tokens: number;
  /** Tokens indexed, counted against the cap: the documents' and their dead copies'. */
  readonly indexedTokens: number;
  readonly capTokens: number;
  readonly segments: number;
  /** Bytes the automata's arrays hold now. */
  readonly bytes: number;
  /** Documents added and evicted since the cache was made. */
  readonly added: number;
  readonly evicted: number;
  /** Proposals looked up in the cache, and those drafted from it. */
  readonly lookups: number;
  readonly hits: number;
}

export class SuffixCache {
  private segments: Segment[] = [];
  private added = 0;
  private evicted = 0;
  private readonly used = new Set<CachedDocument>();
  /** Counted by the drafters that use the cache. */
  lookups = 0;
  hits = 0;

  constructor(readonly capTokens: number) {
    if (!Number.isInteger(capTokens) || capTokens < 0) throw new SpecdecError(`suffix cache: the token cap must be an integer >= 0, got ${capTokens}`);
  }

  /**
   * Add a finished generation (prompt and output) as one document; a document longer than the
   * cap keeps its last `capTokens` tokens. Documents used since the last add move to the newest
   * segment first; then the oldest segments go while the cap is exceeded.
   */
  add(tokens: readonly Token[]): void {
    if (this.capTokens === 0 || tokens.length === 0) return;
    // In the order of their last use: a used document already in the newest segment stays
    // there, unless an earlier-used one started a newer segment.
    for (const d of this.used) {
      if (d.dead || d.segment === this.segments[this.segments.length - 1]) continue;
      d.dead = true;
      this.append(d.segment.text(d));
    }
    this.used.clear();
    this.append(tokens.length > this.capTokens ? tokens.slice(tokens.length - this.capTokens) : tokens);
    this.added++;
    while (this.segments.length > 1 && this.indexedTokens() > this.capTokens) {
      const gone = this.segments.shift()!;
      this.evicted += gone.docs.filter((d) => !d.dead).length;
      for (const d of gone.docs) this.used.delete(d);
    }
  }

  /** Live documents, least recently used first (for tests and inspection). */
  documents(): Token[][] {
    return this.segments.flatMap((s) => s.docs.filter((d) => !d.dead).map((d) => s.text(d)));
  }

  /** True when nothing is cached. */
  get empty(): boolean {
    return this.segments.length === 0;
  }

  /** A drafter's view of the cache: the longest match of its context, kept up to date. */
  matcher(): CacheMatcher {
    return new CacheMatcher(this, () => this.segments);
  }

  /** Mark a document as used now: it moves to the newest segment at the next add. */
  use(d: CachedDocument): void {
    if (d.dead) return;
    this.used.delete(d); // a Set iterates in insertion order: last use last
    this.used.add(d);
  }

  stats(): SuffixCacheStats {
    const live = this.segments.flatMap((s) => s.docs.filter((d) => !d.dead));
    return {
      documents: live.length,
      tokens: live.reduce((n, d) => n + d.length, 0),
      indexedTokens: this.indexedTokens(),
      capTokens: this.capTokens,
      segments: this.segments.length,
      bytes: this.segments.reduce((n, s) => n + s.sam.size().bytes, 0),
      added: this.added,
      evicted: this.evicted,
      lookups: this.lookups,
      hits: this.hits,
    };
  }

  private indexedTokens(): number {
    return this.segments.reduce((n, s) => n + s.tokens, 0);
  }

  private append(tokens: readonly Token[]): void {
    const segmentCap = Math.ceil(this.capTokens / SEGMENTS);
    let s = this.segments[this.segments.length - 1];
    if (!s || (s.tokens > 0 && s.tokens + tokens.length > segmentCap)) {
      // Sized like the last full segment (arrays double as a segment fills, which costs a copy).
      const expected = this.segments.length > 0 ? this.segments[this.segments.length - 1].tokens : 4096;
      s = new Segment(Math.min(Math.max(segmentCap, tokens.length), Math.max(expected, tokens.length)));
      this.segments.push(s);
    }
    s.add(tokens);
  }
}

/** One occurrence found by a lookup: where its continuation starts. */
interface Occurrence {
  readonly segment: Segment;
  readonly position: number;
}

/**
 * The longest suffix of one drafter's context that occurs in the cache, followed token by token
 * (amortised O(1) per token per segment); a segment that changed since is matched again from the
 * whole context when next looked up.
 */
export class CacheMatcher {
  private context: Token[] = [];
  private readonly matches = new Map<Segment, SuffixMatch & { version: number }>();
  private readonly found: Occurrence[] = [];
  private readonly ends: number[] = [];
  private readonly path: Token[] = [];

  constructor(readonly cache: SuffixCache, private readonly segments: () => readonly Segment[]) {}

  /** Start over with an empty context. */
  reset(): void {
    this.context = [];
    this.matches.clear();
    for (const s of this.segments()) this.matches.set(s, { state: 0, length: 0, version: s.version });
  }

  push(token: Token): void {
    this.context.push(token);
    for (const [s, m] of this.matches) if (m.version === s.version) s.sam.step(m, token);
  }

  /** Length of the longest suffix of the context that occurs in a live part of the cache. */
  longest(): number {
    let best = 0;
    for (const s of this.segments()) best = Math.max(best, this.matchIn(s).length);
    return best;
  }

  /**
   * Count the continuations (up to `depth` tokens) of the newest `maxOccurrences` live
   * occurrences of the longest match into `trie`, newest segment first. Returns the match length.
   */
  addContinuations(depth: number, maxOccurrences: number, trie: ContinuationTrie): number {
    const length = this.longest();
    this.found.length = 0;
    if (length === 0) return 0;
    const segments = this.segments();
    for (let i = segments.length - 1; i >= 0 && this.found.length < maxOccurrences; i--) {
      const s = segments[i];
      const m = this.matchIn(s);
      if (m.length !== length) continue;
      // Dead copies take part of the walk: ask for more, keep the live ones.
      const ends = s.sam.occurrences(m.state, 2 * maxOccurrences, this.ends).sort((a, b) => b - a);
      for (const position of ends) {
        if (this.found.length >= maxOccurrences) break;
        if (s.docAt(position).dead) continue;
        this.found.push({ segment: s, position });
        trie.add(s.sam.continuation(position, depth, this.path));
      }
    }
    return length;
  }

  /** The documents of the last `addContinuations` drafted a proposal: they were used now. */
  useFound(): void {
    for (const o of this.found) this.cache.use(o.segment.docAt(o.position));
  }

  private matchIn(s: Segment): SuffixMatch {
    let m = this.matches.get(s);
    if (!m || m.version !== s.version) {
      m = { state: 0, length: 0, version: s.version };
      for (const t of this.context) s.sam.step(m, t);
      this.matches.set(s, m);
    }
    // Forget segments that were evicted.
    if (this.matches.size > this.segments().length) for (const k of this.matches.keys()) if (!this.segments().includes(k)) this.matches.delete(k);
    return m;
  }
}
