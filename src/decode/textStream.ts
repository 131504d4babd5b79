import type { Target } from "../targets/target.js";
import type { Token } from "../types.js";

/** A run of emitted text and whether it came from accepted guesses (or from the target's own tokens). */
export interface TextSegment {
  readonly text: string;
  readonly guessed: boolean;
}

/**
 * Turns committed tokens into text deltas that never split a UTF-8 character and never show
 * a stop string (or the start of one that may still complete). With `origins`, it also tells
 * which characters came from accepted guesses (`lastSegments`), for showing how text was made.
 */
export class TextStream {
  private generated: Token[] = [];
  private guessedFlags: boolean[] = []; // per generated token: an accepted guess?
  private decodedUpTo = 0; // tokens whose text is in `text`
  private text = ""; // decoded text of generated[0, decodedUpTo)
  private origin: boolean[] = []; // with origins: per character of `text`, from a guess?
  private emitted = 0; // characters of `text` already handed out
  private segments: TextSegment[] = [];
  /** Set when a stop string was found: the text ends before it. */
  stopped = false;

  constructor(
    private readonly target: Target,
    private readonly prompt: readonly Token[],
    private readonly stops: readonly string[] = [],
    private readonly origins = false,
  ) {}

  /** Add tokens (the first `guessed` of them accepted guesses); returns the text that is now safe to emit. */
  push(tokens: readonly Token[], final = false, guessed = 0): string {
    tokens.forEach((t, i) => {
      this.generated.push(t);
      this.guessedFlags.push(i < guessed);
    });
    const pending = this.generated.slice(this.decodedUpTo);
    if (pending.length > 0) {
      const before = this.decodedUpTo > 0 ? this.generated.slice(Math.max(0, this.decodedUpTo - 8), this.decodedUpTo) : this.prompt.slice(-8);
      const piece = this.target.detokenize(pending, before);
      // A trailing U+FFFD may be a character whose remaining bytes are in the next token:
      // wait for them (a character has at most 4 bytes, so give up after 4 tokens).
      if (final || !piece.endsWith("\uFFFD") || pending.length >= 4) {
        if (this.origins) this.attribute(pending, before, piece);
        this.text += piece;
        this.decodedUpTo = this.generated.length;
      }
    }
    return this.take(final);
  }

  /** The last delta split into runs by origin (with `origins`; otherwise one run, not guessed). */
  lastSegments(): readonly TextSegment[] {
    return this.segments;
  }

  // Characters of `piece` belong to the token whose prefix decode first covers them.
  private attribute(pending: readonly Token[], before: readonly Token[], piece: string): void {
    let covered = 0;
    for (let j = 1; j <= pending.length; j++) {
      const upTo = j === pending.length ? piece.length : Math.min(piece.length, this.target.detokenize(pending.slice(0, j), before).length);
      const guessed = this.guessedFlags[this.decodedUpTo + j - 1];
      for (; covered < upTo; covered++) this.origin.push(guessed);
    }
    for (; covered < piece.length; covered++) this.origin.push(false);
  }

  private take(final: boolean): string {
    let end = this.text.length;
    for (const s of this.stops) {
      const at = this.text.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && at < end) {
        end = at;
        this.stopped = true;
      }
    }
    if (!this.stopped && !final) end -= this.heldForStops(end);
    const from = this.emitted;
    const out = this.text.slice(from, Math.max(from, end));
    this.emitted = Math.max(from, end);
    this.segments = [];
    if (this.origins) {
      for (let i = from; i < from + out.length; ) {
        let j = i + 1;
        while (j < from + out.length && this.origin[j] === this.origin[i]) j++;
        this.segments.push({ text: this.text.slice(i, j), guessed: this.origin[i] });
        i = j;
      }
    } else if (out) this.segments.push({ text: out, guessed: false });
    if (this.stopped) this.text = this.text.slice(0, end);
    return out;
  }

  // Length of the longest tail of text[0, end) that begins some stop string.
  private heldForStops(end: number): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, end - this.emitted); n > hold; n--) {
        if (this.text.endsWith(s.slice(0, n), end)) {
          hold = n;
          break;
        }
      }
    }
    return hold;
  }

  /** All text emitted so far. */
  get emittedText(): string {
    return this.text.slice(0, this.emitted);
  }
}
