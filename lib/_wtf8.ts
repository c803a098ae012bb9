/**
 * WTF-8: UTF-8 generalized to strings with lone surrogates, so that every
 * JavaScript string survives the trip through bytes.
 *
 * `TextEncoder` replaces a lone surrogate (`"\uD800"`) by U+FFFD, so two
 * different strings would become one key, and a string value would come
 * back changed. WTF-8 writes a lone surrogate as the three bytes its code
 * point would take in UTF-8 (`ED A0..BF 80..BF`), a sequence that valid
 * UTF-8 never contains; every other code point is written exactly as UTF-8
 * writes it. So a well-formed string has the same bytes in both encodings,
 * and the codec takes this slower path only for strings that
 * `isWellFormed()` rejects, marking them with a tag of their own so that
 * decoding them needs no scan either.
 *
 * @module
 */

/**
 * Whether `text` has no lone surrogate (`String.prototype.isWellFormed`,
 * in both runtimes).
 */
export const isWellFormed: (text: string) => boolean = (text) => text.isWellFormed();

/**
 * Writes `text` as WTF-8 into `out` from `offset`, at most `limit` bytes.
 *
 * @returns The bytes written, or -1 when they would exceed `limit`.
 *
 * @example
 * ```ts
 * import { encodeWtf8Into } from "./_wtf8.ts";
 *
 * const out = new Uint8Array(8);
 * encodeWtf8Into("\uD800a", out, 0, 8); // 4: ED A0 80 61
 * ```
 */
export function encodeWtf8Into(
  text: string,
  out: Uint8Array,
  offset: number,
  limit: number,
): number {
  const end = offset + limit;
  let at = offset;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    // A lone surrogate (0xd800..0xdfff left unpaired above) takes the
    // three-byte form, like any other code point below 0x10000.
    if (code < 0x80) {
      if (at + 1 > end) return -1;
      out[at++] = code;
    } else if (code < 0x800) {
      if (at + 2 > end) return -1;
      out[at++] = 0xc0 | (code >> 6);
      out[at++] = 0x80 | (code & 0x3f);
    } else if (code < 0x10000) {
      if (at + 3 > end) return -1;
      out[at++] = 0xe0 | (code >> 12);
      out[at++] = 0x80 | ((code >> 6) & 0x3f);
      out[at++] = 0x80 | (code & 0x3f);
    } else {
      if (at + 4 > end) return -1;
      out[at++] = 0xf0 | (code >> 18);
      out[at++] = 0x80 | ((code >> 12) & 0x3f);
      out[at++] = 0x80 | ((code >> 6) & 0x3f);
      out[at++] = 0x80 | (code & 0x3f);
    }
  }
  return at - offset;
}

/** The WTF-8 size of `text` in bytes (for error messages). */
export function wtf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Decodes WTF-8 bytes `bytes[start..end)` written by {@linkcode encodeWtf8Into}.
 * Bytes that are not WTF-8 (the file is untrusted) decode as U+FFFD, never
 * as an exception.
 *
 * @example
 * ```ts
 * import { decodeWtf8 } from "./_wtf8.ts";
 *
 * decodeWtf8(new Uint8Array([0xed, 0xa0, 0x80, 0x61]), 0, 4); // "\uD800a"
 * ```
 */
export function decodeWtf8(bytes: Uint8Array, start: number, end: number): string {
  const units: number[] = [];
  let text = "";
  let i = start;
  while (i < end) {
    const b = bytes[i];
    let code = 0xfffd;
    let need = 0;
    if (b < 0x80) code = b;
    else if (b >= 0xc2 && b <= 0xdf) [code, need] = [b & 0x1f, 1];
    else if (b >= 0xe0 && b <= 0xef) [code, need] = [b & 0x0f, 2];
    else if (b >= 0xf0 && b <= 0xf4) [code, need] = [b & 0x07, 3];
    i++;
    let k = 0;
    for (; k < need && i < end && (bytes[i] & 0xc0) === 0x80; k++, i++) {
      code = (code << 6) | (bytes[i] & 0x3f);
    }
    // Overlong or out-of-range sequences are not WTF-8.
    const min = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
    if (k < need || (need > 0 && (code < min || code > 0x10ffff))) code = 0xfffd;
    if (code >= 0x10000) {
      code -= 0x10000;
      units.push(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
    } else units.push(code);
    // Flushes in chunks: fromCharCode takes its arguments on the stack.
    if (units.length >= 4096) {
      text += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return text + String.fromCharCode(...units);
}
