// An online suffix automaton (Blumer et al. 1985) over a growing token string: the smallest
// automaton that accepts every substring, built one token at a time in amortised O(1) (states
// <= 2n, transitions <= 3n). Each state is a class of substrings with the same set of end
// positions; its suffix link goes to the class of its longest suffix with more end positions.
// The suffix links form a tree whose subtree under a state holds, once each, the states created
// for the end positions of that state's substrings: walking it lists the occurrences.
//
// Why an automaton rather than a suffix tree: the longest suffix of the indexed text that also
// occurs earlier is simply the suffix link of the last state (O(1) after each token), a separate
// text is matched against it in amortised O(1) per token, and the online construction is short.
// Several documents share one automaton, each ended by a separator token of its own (negative,
// never in a context), so no match runs across a document boundary.

import type { Token } from "../types.js";

const NONE = -1;
const ROOT_STATE = 0;

/** A matched suffix: the state holding it and its length (state 0 and 0 = nothing matched). */
export interface SuffixMatch {
  state: number;
  length: number;
}

export class SuffixAutomaton {
  // The text: (n) tokens; separators are negative.
  private text: Int32Array;
  private n = 0;
  private separators = 0;

  // States, (states): the longest substring's length, the suffix link, whether the state is a
  // clone (made by a split, so it is no end position of its own), its first outgoing transition.
  private len: Int32Array;
  private link: Int32Array;
  private clone: Uint8Array;
  private firstEdge: Int32Array;
  // The suffix-link tree, (states): children as a doubly linked list, newest first.
  private firstChild: Int32Array;
  private nextSibling: Int32Array;
  private prevSibling: Int32Array;
  private states = 0;
  private last = ROOT_STATE; // the state of the whole text

  // Transitions, (edges): source state, token, target state, the source's next transition.
  private edgeSrc: Int32Array;
  private edgeTok: Int32Array;
  private edgeDst: Int32Array;
  private edgeNext: Int32Array;
  private edges = 0;
  // (source, token) -> edge + 1 (0 = empty): open addressing, linear probing, load <= 1/2.
  private slots: Int32Array;

  private stack = new Int32Array(64); // scratch for walking the link tree

  /**
   * @param expectedTokens tokens the text will probably hold: sizes the first allocation for
   * natural text (about 1.3 states and 2.2 transitions per token; arrays double when full).
   */
  constructor(expectedTokens = 256) {
    const t = Math.max(16, expectedTokens);
    const states = Math.ceil(1.5 * t), edges = Math.ceil(2.5 * t);
    this.text = new Int32Array(t + 1);
    this.len = new Int32Array(states);
    this.link = new Int32Array(states);
    this.clone = new Uint8Array(states);
    this.firstEdge = new Int32Array(states);
    this.firstChild = new Int32Array(states);
    this.nextSibling = new Int32Array(states);
    this.prevSibling = new Int32Array(states);
    this.edgeSrc = new Int32Array(edges);
    this.edgeTok = new Int32Array(edges);
    this.edgeDst = new Int32Array(edges);
    this.edgeNext = new Int32Array(edges);
    this.slots = new Int32Array(1 << Math.ceil(Math.log2(2 * edges)));
    this.newState(0, false, NONE);
  }

  /** Forget the text, keeping the arrays (a new request reuses them). */
  clear(): void {
    this.n = this.separators = this.states = this.edges = 0;
    this.last = ROOT_STATE;
    this.slots.fill(0);
    this.newState(0, false, NONE);
  }

  /** Tokens indexed (separators included). */
  get length(): number {
    return this.n;
  }

  tokenAt(position: number): number {
    return this.text[position];
  }

  /** States and transitions, and the bytes their arrays hold now (capacity, not only use). */
  size(): { states: number; edges: number; bytes: number } {
    const arrays = [this.text, this.len, this.link, this.clone, this.firstEdge, this.firstChild, this.nextSibling, this.prevSibling, this.edgeSrc, this.edgeTok, this.edgeDst, this.edgeNext, this.slots];
    return { states: this.states, edges: this.edges, bytes: arrays.reduce((s, a) => s + a.byteLength, 0) };
  }

  /** Append one token (a non-negative integer). Amortised O(1). */
  extend(token: Token): void {
    this.append(token);
  }

  /** End the current document: what follows is never matched across this point. */
  endDocument(): void {
    this.append(-1 - this.separators++);
  }

  /** The longest suffix of the text that also ends at an earlier position (0 and state 0 when none). */
  longestRepeatedSuffix(out: SuffixMatch): SuffixMatch {
    const s = this.last === ROOT_STATE ? ROOT_STATE : this.link[this.last];
    out.state = s;
    out.length = this.len[s];
    return out;
  }

  /**
   * Extend a match of some other text by its next token: afterwards `m` holds the longest suffix
   * of that text (ending with `token`) that occurs here. Amortised O(1) per token.
   */
  step(m: SuffixMatch, token: Token): void {
    let s = m.state, l = m.length;
    for (;;) {
      const e = this.findEdge(s, token);
      if (e !== NONE) {
        s = this.edgeDst[e];
        l++;
        break;
      }
      if (s === ROOT_STATE) {
        l = 0;
        break;
      }
      s = this.link[s];
      l = this.len[s];
    }
    m.state = s;
    m.length = l;
  }

  /** The state of `tokens` when they occur in the text, else -1 (O(length)). */
  stateOf(tokens: readonly number[]): number {
    let s = ROOT_STATE;
    for (const t of tokens) {
      const e = this.findEdge(s, t);
      if (e === NONE) return NONE;
      s = this.edgeDst[e];
    }
    return s;
  }

  /**
   * End positions of the occurrences of a state's substrings (position p: the occurrence ends
   * right before token p), at most `max` of them, into `out` (cleared first). The link tree is
   * walked newest child first; the cost is O(what is returned).
   */
  occurrences(state: number, max: number, out: number[]): number[] {
    out.length = 0;
    if (state < 0 || state >= this.states || max <= 0) return out;
    let stack = this.stack;
    let top = 0;
    stack[top++] = state;
    while (top > 0 && out.length < max) {
      const s = stack[--top];
      if (!this.clone[s] && s !== ROOT_STATE) out.push(this.len[s]);
      const from = top;
      for (let c = this.firstChild[s]; c !== NONE; c = this.nextSibling[c]) {
        if (top === stack.length) stack = this.stack = grow(stack, 2 * stack.length);
        stack[top++] = c;
      }
      stack.subarray(from, top).reverse(); // pop the newest child first
    }
    return out;
  }

  /** How many times a state's substrings occur (O(count); for tests and statistics). */
  count(state: number): number {
    return this.occurrences(state, Infinity, []).length;
  }

  /** Up to `max` tokens from `position` on, stopping at the end of its document, into `out` (cleared first). */
  continuation(position: number, max: number, out: Token[]): Token[] {
    out.length = 0;
    for (let p = position; p < this.n && out.length < max; p++) {
      const t = this.text[p];
      if (t < 0) break;
      out.push(t as Token);
    }
    return out;
  }

  // ---- construction ------------------------------------------------------------------------

  private append(token: number): void {
    if (this.n === this.text.length) this.text = grow(this.text, 2 * this.n);
    this.text[this.n++] = token;
    const cur = this.newState(this.len[this.last] + 1, false, NONE);
    let p = this.last;
    let e = NONE;
    while (p !== NONE && (e = this.findEdge(p, token)) === NONE) {
      this.addEdge(p, token, cur);
      p = this.link[p];
    }
    if (p === NONE) this.attach(cur, ROOT_STATE);
    else {
      const q = this.edgeDst[e];
      if (this.len[p] + 1 === this.len[q]) this.attach(cur, q);
      else {
        // Split q: the substrings of q up to len(p) + 1 now also end here.
        const cl = this.newState(this.len[p] + 1, true, q);
        this.attach(cl, this.link[q]);
        this.detach(q);
        this.attach(q, cl);
        this.attach(cur, cl);
        while (p !== NONE && (e = this.findEdge(p, token)) !== NONE && this.edgeDst[e] === q) {
          this.edgeDst[e] = cl;
          p = this.link[p];
        }
      }
    }
    this.last = cur;
  }

  /** A new state of `len`; a clone copies the transitions of `copyOf`. */
  private newState(len: number, isClone: boolean, copyOf: number): number {
    const s = this.states++;
    if (s === this.len.length) {
      const c = 2 * s;
      this.len = grow(this.len, c);
      this.link = grow(this.link, c);
      this.clone = grow(this.clone, c);
      this.firstEdge = grow(this.firstEdge, c);
      this.firstChild = grow(this.firstChild, c);
      this.nextSibling = grow(this.nextSibling, c);
      this.prevSibling = grow(this.prevSibling, c);
    }
    this.len[s] = len;
    this.link[s] = NONE;
    this.clone[s] = isClone ? 1 : 0;
    this.firstEdge[s] = NONE;
    this.firstChild[s] = NONE;
    this.nextSibling[s] = NONE;
    this.prevSibling[s] = NONE;
    if (copyOf !== NONE) for (let e = this.firstEdge[copyOf]; e !== NONE; e = this.edgeNext[e]) this.addEdge(s, this.edgeTok[e], this.edgeDst[e]);
    return s;
  }

  /** Make `parent` the suffix link of `child` (newest child first). */
  private attach(child: number, parent: number): void {
    this.link[child] = parent;
    const first = this.firstChild[parent];
    this.prevSibling[child] = NONE;
    this.nextSibling[child] = first;
    if (first !== NONE) this.prevSibling[first] = child;
    this.firstChild[parent] = child;
  }

  private detach(child: number): void {
    const prev = this.prevSibling[child], next = this.nextSibling[child];
    if (prev === NONE) this.firstChild[this.link[child]] = next;
    else this.nextSibling[prev] = next;
    if (next !== NONE) this.prevSibling[next] = prev;
  }

  private findEdge(src: number, token: number): number {
    const mask = this.slots.length - 1;
    for (let h = hash(src, token) & mask; ; h = (h + 1) & mask) {
      const e = this.slots[h] - 1;
      if (e === NONE || (this.edgeSrc[e] === src && this.edgeTok[e] === token)) return e;
    }
  }

  private addEdge(src: number, token: number, dst: number): void {
    const e = this.edges++;
    if (e === this.edgeSrc.length) {
      const c = 2 * e;
      this.edgeSrc = grow(this.edgeSrc, c);
      this.edgeTok = grow(this.edgeTok, c);
      this.edgeDst = grow(this.edgeDst, c);
      this.edgeNext = grow(this.edgeNext, c);
    }
    this.edgeSrc[e] = src;
    this.edgeTok[e] = token;
    this.edgeDst[e] = dst;
    this.edgeNext[e] = this.firstEdge[src];
    this.firstEdge[src] = e;
    if (2 * this.edges > this.slots.length) this.rehash(2 * this.slots.length);
    else this.insertSlot(e);
  }

  private insertSlot(e: number): void {
    const mask = this.slots.length - 1;
    let h = hash(this.edgeSrc[e], this.edgeTok[e]) & mask;
    while (this.slots[h] !== 0) h = (h + 1) & mask;
    this.slots[h] = e + 1;
  }

  private rehash(capacity: number): void {
    this.slots = new Int32Array(capacity);
    for (let e = 0; e < this.edges; e++) this.insertSlot(e);
  }
}

function hash(src: number, token: number): number {
  let h = Math.imul(src, 0x9e3779b1) ^ Math.imul(token, 0x85ebca77);
  h ^= h >>> 15;
  return Math.imul(h, 0xc2b2ae35) ^ (h >>> 13);
}

function grow<T extends Int32Array | Uint8Array>(a: T, capacity: number): T {
  const b = new (a.constructor as new (n: number) => T)(capacity);
  b.set(a);
  return b;
}
