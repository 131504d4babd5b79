import { SpecdecError } from "../errors.js";
import type { Target } from "../target.js";
import type { Token } from "../types.js";

/**
 * Turns committed tokens into text deltas that never split a UTF-8 character and never show
 * a stop string (or the start of one that may still complete).
 */
export class TextStream {
  private generated: Token[] = [];
  private decodedUpTo = 0; // tokens whose text is in `text`
  private text = ""; // decoded text of generated[0, decodedUpTo)
  private emitted = 0; // characters of `text` already handed out
  /** Set when a stop string was found: the text ends before it. */
  stopped = false;

  constructor(
    private readonly target: Target,
    private readonly prompt: readonly Token[],
    private readonly stops: readonly string[] = [],
  ) {
    // "" occurs everywhere: generation would end at once.
    if (stops.some((s) => s === "")) throw new SpecdecError("a stop string must not be empty");
  }

  /** Add tokens; returns the text that is now safe to emit. */
  push(tokens: readonly Token[], final = false): string {
    this.generated.push(...tokens);
    const pending = this.generated.slice(this.decodedUpTo);
    if (pending.length > 0) {
      const before = this.decodedUpTo > 0 ? this.generated.slice(Math.max(0, this.decodedUpTo - 8), this.decodedUpTo) : this.prompt.slice(-8);
      const piece = this.target.detokenize(pending, before);
      // A trailing U+FFFD may be a character whose remaining bytes are in the next token:
      // wait for them (a character has at most 4 bytes, so give up after 4 tokens).
      if (final || !piece.endsWith("\uFFFD") || pending.length >= 4) {
        this.text += piece;
        this.decodedUpTo = this.generated.length;
      }
    }
    return this.take(final);
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
    const out = this.text.slice(this.emitted, Math.max(this.emitted, end));
    this.emitted = Math.max(this.emitted, end);
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
