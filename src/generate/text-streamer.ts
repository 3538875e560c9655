// Streams generated tokens as text: after each token, emits the part of the decoded
// text that is new since the last emission. Decoding the whole generated run each time
// keeps SentencePiece space handling and multi-byte characters split across byte
// tokens right; text ending in U+FFFD (an incomplete character) is held back.

export interface Decoding {
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
}

export class TextStreamer {
  readonly #tokenizer: Decoding;
  readonly #context: number[];
  readonly #prefix: string;
  readonly #write: (text: string) => void;
  readonly #ids: number[] = [];
  #emitted = 0;

  /** `context`: the prompt ids, decoded with the new ones so spacing is as in one pass. */
  constructor(tokenizer: Decoding, context: readonly number[], write: (text: string) => void) {
    this.#tokenizer = tokenizer;
    this.#context = [...context];
    this.#prefix = tokenizer.decode(this.#context, { skipSpecialTokens: true });
    this.#write = write;
  }

  put(id: number): void {
    this.#ids.push(id);
    this.#flush(false);
  }

  /** Emits whatever is still held back. */
  end(): void {
    this.#flush(true);
  }

  #flush(final: boolean): void {
    const full = this.#tokenizer.decode([...this.#context, ...this.#ids], { skipSpecialTokens: true });
    const text = full.startsWith(this.#prefix) ? full.slice(this.#prefix.length) : full;
    if (!final && text.endsWith('\uFFFD')) return;
    if (text.length > this.#emitted) {
      this.#write(text.slice(this.#emitted));
      this.#emitted = text.length;
    }
  }
}
