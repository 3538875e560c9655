// Incremental decoding for streamed generation: given ids one at a time, return only the
// new text, so that the pieces printed concatenate to exactly decode(all ids).
//
// Token-by-token decoding is wrong for two reasons: a byte-fallback piece (<0xE2>) can hold
// part of a UTF-8 character, and SentencePiece's decoder strips the leading space of the
// whole text, not of each token. So this decodes the full sequence and emits the suffix
// past what was already emitted, holding back while the text ends in U+FFFD (an incomplete
// character) and, when clean_up_tokenization_spaces is on, from the last space onward
// (cleanup rewrites " ." -> "." etc., which can change text after a space).
// Cost: one full decode per token, O(n^2) characters over a generation; fine for the
// few-thousand-token outputs of this toolkit.

const REPLACEMENT = '\uFFFD';

export class DecodeStream {
  readonly #decode: (ids: number[]) => string;
  readonly #holdFromSpace: boolean;
  readonly #ids: number[] = [];
  #emitted = '';

  /** `decode` turns a full id list into text; `holdFromSpace` is set when cleanup is on. */
  constructor(decode: (ids: number[]) => string, holdFromSpace = false) {
    this.#decode = decode;
    this.#holdFromSpace = holdFromSpace;
  }

  /** Every id pushed so far. */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /** Add one id (or several); return the text that is now final ('' when held back). */
  push(...ids: number[]): string {
    this.#ids.push(...ids);
    const text = this.#decode(this.#ids);
    let end = text.length;
    while (end > 0 && text[end - 1] === REPLACEMENT) end--;
    if (this.#holdFromSpace) {
      const space = text.lastIndexOf(' ', end - 1);
      if (space >= 0) end = Math.min(end, space);
    }
    return this.#emitUpTo(text, end);
  }

  /** Emit whatever is held back (call once generation has stopped). */
  flush(): string {
    const text = this.#decode(this.#ids);
    return this.#emitUpTo(text, text.length);
  }

  #emitUpTo(text: string, end: number): string {
    // The held-back rules keep emitted text a prefix of every later decode; if a decoder
    // ever breaks that, emit nothing rather than repeat or reorder text.
    if (end <= this.#emitted.length || !text.startsWith(this.#emitted)) return '';
    const out = text.slice(this.#emitted.length, end);
    this.#emitted = text.slice(0, end);
    return out;
  }
}
