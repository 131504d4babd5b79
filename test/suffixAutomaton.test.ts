// The suffix automaton and the cross-request cache of suffix decoding, against brute-force
// search on random token strings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SuffixAutomaton, type SuffixMatch } from "../src/drafters/suffixAutomaton.js";
import { SuffixCache } from "../src/drafters/suffixCache.js";
import { ContinuationTrie } from "../src/drafters/continuationTree.js";
import { SpecdecError } from "../src/errors.js";
import { SeededRng } from "../src/sampling/rng.js";
import { asTokens, type Token } from "../src/types.js";

const randomTokens = (rng: SeededRng, n: number, alphabet: number): Token[] => asTokens(Array.from({ length: n }, () => Math.floor(rng.next() * alphabet)));

/** End positions (exclusive) of every occurrence of `pattern` in `text`, ascending. */
function bruteEnds(text: readonly number[], pattern: readonly number[]): number[] {
  const ends: number[] = [];
  for (let i = 0; i + pattern.length <= text.length; i++) {
    let j = 0;
    while (j < pattern.length && text[i + j] === pattern[j]) j++;
    if (j === pattern.length) ends.push(i + pattern.length);
  }
  return ends;
}

function build(tokens: readonly Token[]): SuffixAutomaton {
  const sam = new SuffixAutomaton(4);
  for (const t of tokens) sam.extend(t);
  return sam;
}

const ends = (sam: SuffixAutomaton, pattern: readonly number[]) => {
  const s = sam.stateOf(pattern);
  return s < 0 ? [] : [...sam.occurrences(s, Infinity, [])].sort((a, b) => a - b);
};

test("suffix automaton: every substring is found with all its occurrences, and nothing else is", () => {
  const rng = new SeededRng(1);
  for (const [alphabet, n] of [[2, 300], [3, 250], [8, 300], [64, 200]]) {
    const text = randomTokens(rng, n, alphabet);
    const sam = build(text);
    assert.equal(sam.length, n);
    // Every substring up to length 10 (all of them), and longer ones at random.
    const patterns: number[][] = [];
    for (let i = 0; i < n; i++) for (let len = 1; len <= 10 && i + len <= n; len++) patterns.push(text.slice(i, i + len));
    for (let k = 0; k < 300; k++) {
      const i = Math.floor(rng.next() * n), len = 1 + Math.floor(rng.next() * (n - i));
      patterns.push(text.slice(i, i + len));
    }
    for (const p of patterns) {
      const want = bruteEnds(text, p);
      assert.deepEqual(ends(sam, p), want, `alphabet ${alphabet}: occurrences of ${p.join(",")}`);
      assert.equal(sam.count(sam.stateOf(p)), want.length);
      // What follows each occurrence is the text there: the continuation up to the end.
      const next = new Map<number, number>();
      for (const e of want) if (e < n) next.set(text[e], (next.get(text[e]) ?? 0) + 1);
      for (const [t, c] of next) assert.equal(ends(sam, [...p, t]).length, c, `continuation ${t} of ${p.join(",")}`);
    }
    // Random strings that do not occur are not found.
    let absent = 0;
    for (let k = 0; k < 2000; k++) {
      const p = randomTokens(rng, 1 + Math.floor(rng.next() * 12), alphabet + 1);
      if (bruteEnds(text, p).length === 0) {
        absent++;
        assert.equal(sam.stateOf(p), -1, `${p.join(",")} does not occur`);
      }
    }
    assert.ok(absent > 100, `the test must try absent strings (${absent})`);
    const { states, edges } = sam.size();
    assert.ok(states <= 2 * n && edges <= 3 * n, `${states} states, ${edges} transitions for ${n} tokens`);
  }
});

test("suffix automaton: extending online equals building from scratch, and the longest repeated suffix is right at every step", () => {
  const rng = new SeededRng(2);
  for (const alphabet of [2, 4, 30]) {
    const text = randomTokens(rng, 400, alphabet);
    const online = new SuffixAutomaton(4);
    const m: SuffixMatch = { state: 0, length: 0 };
    for (let i = 0; i < text.length; i++) {
      online.extend(text[i]);
      const prefix = text.slice(0, i + 1);
      // The longest suffix that also ends earlier, by brute force.
      let want = 0;
      for (let len = i; len >= 1; len--) {
        if (bruteEnds(prefix.slice(0, -1), prefix.slice(-len)).length > 0) { want = len; break; }
      }
      const got = online.longestRepeatedSuffix(m);
      assert.equal(got.length, want, `alphabet ${alphabet}, step ${i}`);
      if (want > 0) assert.deepEqual([...online.occurrences(got.state, Infinity, [])].sort((a, b) => a - b), bruteEnds(prefix, prefix.slice(-want)));
      if (i % 37 === 0 || i === text.length - 1) {
        // The suffix automaton is unique: the same states and transitions, the same answers.
        const fresh = build(prefix);
        assert.deepEqual({ ...online.size(), bytes: 0 }, { ...fresh.size(), bytes: 0 });
        for (let k = 0; k < 200; k++) {
          const a = Math.floor(rng.next() * prefix.length), len = 1 + Math.floor(rng.next() * 8);
          const p = prefix.slice(a, a + len);
          assert.deepEqual(ends(online, p), ends(fresh, p));
        }
      }
    }
  }
});

test("suffix automaton: matching another text finds its longest suffix that occurs, token by token", () => {
  const rng = new SeededRng(3);
  for (const alphabet of [2, 5, 20]) {
    const text = randomTokens(rng, 300, alphabet);
    const sam = build(text);
    const other = randomTokens(rng, 400, alphabet);
    // Splice pieces of the text into the other one so that long matches happen too.
    for (let k = 0; k < 6; k++) {
      const from = Math.floor(rng.next() * 250), to = Math.floor(rng.next() * 350);
      other.splice(to, 30, ...text.slice(from, from + 30));
    }
    const m: SuffixMatch = { state: 0, length: 0 };
    for (let i = 0; i < other.length; i++) {
      sam.step(m, other[i]);
      let want = 0;
      while (want < i + 1 && bruteEnds(text, other.slice(i - want, i + 1)).length > 0) want++;
      assert.equal(m.length, want, `alphabet ${alphabet}, position ${i}`);
      if (want > 0) assert.deepEqual([...sam.occurrences(m.state, Infinity, [])].sort((a, b) => a - b), bruteEnds(text, other.slice(i + 1 - want, i + 1)));
    }
  }
});

test("suffix automaton: documents never match across their boundary; continuations stop at it; occurrences can be capped", () => {
  const sam = new SuffixAutomaton();
  const a = asTokens([1, 2, 3, 4]), b = asTokens([4, 1, 2, 5]);
  for (const t of a) sam.extend(t);
  sam.endDocument();
  for (const t of b) sam.extend(t);
  sam.endDocument();
  assert.equal(sam.length, 10);
  assert.equal(sam.stateOf([4, 4]), -1, "the end of one document and the start of the next are not a substring");
  assert.equal(sam.stateOf([3, 4, 4, 1]), -1);
  // Text: 1 2 3 4 | 4 1 2 5 | (positions 0-3, separator 4, 5-8, separator 9).
  assert.deepEqual(ends(sam, [1, 2]), [2, 8]);
  assert.deepEqual(sam.continuation(2, 10, []), [3, 4]);
  assert.deepEqual(sam.continuation(8, 1, []), [5]);
  assert.deepEqual(sam.continuation(4, 3, []), [], "a document's last token has no continuation");
  const m: SuffixMatch = { state: 0, length: 0 };
  for (const t of asTokens([9, 3, 4, 4])) sam.step(m, t);
  assert.equal(m.length, 1, "after 3 4 | 4 only the last 4 matches");
  // A capped walk returns occurrences, never more than asked.
  const text = asTokens(Array.from({ length: 500 }, (_, i) => i % 3));
  const big = build(text);
  const all = big.occurrences(big.stateOf([0]), Infinity, []);
  assert.equal(all.length, 167);
  const some = big.occurrences(big.stateOf([0]), 10, []);
  assert.equal(some.length, 10);
  for (const e of some) assert.ok(all.includes(e));
});

// ---- The cross-request cache -----------------------------------------------------------------

/** Look `tokens` up as a drafter would (and mark the documents it drafts from as used, with `use`); the match length. */
function draftFrom(cache: SuffixCache, tokens: readonly Token[], trie = new ContinuationTrie(), use = true): number {
  const m = cache.matcher();
  m.reset();
  for (const t of tokens) m.push(t);
  trie.clear();
  const length = m.addContinuations(8, 1000, trie);
  if (use) m.useFound();
  return length;
}

test("suffix cache: evicts least recently used documents first and stays within its cap", () => {
  const doc = (tag: number) => asTokens(Array.from({ length: 30 }, (_, i) => tag * 100 + i));
  const cache = new SuffixCache(100); // segments of 25 tokens: one document each here
  cache.add(doc(1)); cache.add(doc(2)); cache.add(doc(3));
  assert.equal(cache.stats().tokens, 90);
  // Drafting from document 1 makes it the most recently used.
  assert.equal(draftFrom(cache, asTokens([105, 106])), 2);
  cache.add(doc(4)); // 1 moves to a new segment; 120, then 150 tokens indexed: 1's old copy and 2 go
  assert.deepEqual(cache.documents(), [doc(3), doc(1), doc(4)]);
  assert.deepEqual({ ...cache.stats(), bytes: 0 }, { documents: 3, tokens: 90, indexedTokens: 90, capTokens: 100, segments: 3, bytes: 0, added: 4, evicted: 1, lookups: 0, hits: 0 });
  assert.equal(draftFrom(cache, asTokens([205])), 0, "an evicted document is forgotten");
  assert.equal(draftFrom(cache, asTokens([128, 129])), 2);
  // A document longer than the cap keeps its end.
  const long = asTokens(Array.from({ length: 250 }, (_, i) => 1000 + i));
  cache.add(long);
  assert.deepEqual(cache.documents(), [long.slice(150)]);
  // Cap 0 keeps nothing.
  const none = new SuffixCache(0);
  none.add(doc(1));
  assert.equal(none.stats().tokens, 0);
  assert.ok(none.empty);
  assert.throws(() => new SuffixCache(-1), SpecdecError);
});

test("suffix cache: under random adds and uses it never exceeds its cap, evicts in LRU order and finds exactly what it keeps", () => {
  const rng = new SeededRng(4);
  const cap = 400;
  const cache = new SuffixCache(cap);
  const lastUse = new Map<number, number>(); // a document's first token (unique) -> when it was last added or used
  const trie = new ContinuationTrie();
  let clock = 0;
  for (let step = 0; step < 400; step++) {
    const docs = cache.documents();
    if (rng.next() < 0.3 && docs.length > 0) {
      // Draft from a random kept document, found by its first token.
      const d = docs[Math.floor(rng.next() * docs.length)];
      assert.equal(draftFrom(cache, [d[0]], trie), 1);
      assert.equal(trie.occurrences, 1);
      lastUse.set(d[0], ++clock);
      continue;
    }
    const before = docs.map((d) => d[0]);
    const doc = asTokens([100 + step, ...randomTokens(rng, 4 + Math.floor(rng.next() * 120), 6)]);
    cache.add(doc);
    lastUse.set(doc[0], ++clock);
    const after = cache.documents().map((d) => d[0]);
    const s = cache.stats();
    assert.ok(s.indexedTokens <= cap, `${s.indexedTokens} tokens indexed > cap ${cap}`);
    assert.equal(s.tokens, cache.documents().reduce((n, d) => n + d.length, 0));
    assert.ok(after.includes(doc[0]), "the new document is kept");
    assert.equal(new Set(after).size, after.length, "no document twice");
    const evicted = before.filter((d) => !after.includes(d));
    const kept = before.filter((d) => after.includes(d));
    for (const e of evicted) for (const k of kept) assert.ok(lastUse.get(e)! < lastUse.get(k)!, "an evicted document was used more recently than a kept one");
    // Lookups see exactly the kept documents: occurrence counts equal brute force over them.
    const live = cache.documents();
    for (let k = 0; k < 20; k++) {
      const p = randomTokens(rng, 1 + Math.floor(rng.next() * 4), 6);
      const length = draftFrom(cache, p, trie, false);
      const want = live.reduce((n, d) => n + bruteEnds(d, p).filter((e) => e < d.length).length, 0);
      const occurs = live.some((d) => bruteEnds(d, p).length > 0);
      assert.equal(length === p.length, occurs, `${p.join(",")} found iff it occurs`);
      if (occurs) assert.equal(trie.occurrences, want, `continuations of ${p.join(",")}`);
    }
  }
  assert.ok(cache.stats().evicted > 10, "the test must evict");
});
