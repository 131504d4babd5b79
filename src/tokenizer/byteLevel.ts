// GPT-2's byte-level mapping: every byte gets a printable character (printable Latin-1 bytes
// map to themselves, the other 68 to U+0100 upwards), so byte-level vocabularies store their
// tokens as text.

/** byte -> its printable character. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : next++);
  return out;
})();

/** char code -> byte, or -1 for characters outside the mapping. */
const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(512).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => (out[c.charCodeAt(0)] = b));
  return out;
})();

/** Encode text's UTF-8 bytes as mapped characters (lone surrogates count as U+FFFD, as in TextEncoder). */
export function byteEncode(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      out += BYTE_TO_CHAR[cp];
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x800) out += BYTE_TO_CHAR[0xc0 | (cp >> 6)] + BYTE_TO_CHAR[0x80 | (cp & 0x3f)];
    else if (cp < 0x10000) out += BYTE_TO_CHAR[0xe0 | (cp >> 12)] + BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3f)] + BYTE_TO_CHAR[0x80 | (cp & 0x3f)];
    else out += BYTE_TO_CHAR[0xf0 | (cp >> 18)] + BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3f)] + BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3f)] + BYTE_TO_CHAR[0x80 | (cp & 0x3f)];
  }
  return out;
}

/** Undo the mapping; characters outside it keep their own UTF-8 bytes. */
export function byteDecode(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    const b = code < 512 ? CHAR_TO_BYTE[code] : -1;
    if (b >= 0) bytes.push(b);
    else bytes.push(...Buffer.from(ch, "utf8"));
  }
  return Uint8Array.from(bytes);
}
