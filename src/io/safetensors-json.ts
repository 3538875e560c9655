// Strict JSON parser for safetensors headers. JSON.parse cannot be used as is: it keeps the
// last of duplicate keys silently (the reference reader rejects duplicates) and turns
// `2.0` or `1e3` into integers (serde rejects them for usize fields). This parser returns
// objects as Maps in source order, integer literals as bigint (exact, no 2^53 rounding)
// and other numbers as number, and reports the first duplicate key.

export type JsonValue = null | boolean | string | number | bigint | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** A syntax error or duplicate key at a character offset of the parsed text. */
export class JsonParseError extends Error {
  readonly offset: number;
  readonly duplicateKey: string | undefined;
  constructor(message: string, offset: number, duplicateKey?: string) {
    super(message);
    this.offset = offset;
    this.duplicateKey = duplicateKey;
  }
}

/** Nesting deeper than this is rejected (a valid header nests 3 levels). */
const MAX_DEPTH = 64;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Parser {
  pos = 0;
  constructor(readonly text: string) {}

  fail(what: string, at = this.pos): never {
    throw new JsonParseError(`${what} at character ${at}`, at);
  }

  skipWs(): void {
    const s = this.text;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    this.skipWs();
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === undefined) this.fail('unexpected end of input');
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.number();
  }

  number(): number | bigint {
    NUMBER_RE.lastIndex = this.pos;
    const m = NUMBER_RE.exec(this.text);
    if (m === null) this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    this.pos += m[0].length;
    return m[1] === undefined && m[2] === undefined ? BigInt(m[0]) : Number(m[0]);
  }

  string(): string {
    const s = this.text;
    const start = ++this.pos;
    let out = '';
    let chunk = start;
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail('unterminated string', start - 1);
      if (c === 0x22) break;
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += s.slice(chunk, this.pos);
      const e = s[this.pos + 1];
      if (e === 'u') {
        const hex = s.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else {
        const r = e === undefined ? undefined : ESCAPES[e];
        if (r === undefined) this.fail('bad escape');
        out += r;
        this.pos += 2;
      }
      chunk = this.pos;
    }
    out += s.slice(chunk, this.pos);
    this.pos++;
    return out;
  }

  array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWs();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.skipWs();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail("expected ',' or ']'", this.pos - 1);
    }
  }

  object(depth: number): JsonObject {
    this.pos++;
    const out: JsonObject = new Map();
    this.skipWs();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWs();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const at = this.pos;
      const key = this.string();
      if (out.has(key)) throw new JsonParseError(`duplicate key ${JSON.stringify(key)} at character ${at}`, at, key);
      this.skipWs();
      if (this.text[this.pos++] !== ':') this.fail("expected ':'", this.pos - 1);
      out.set(key, this.value(depth + 1));
      this.skipWs();
      const c = this.text[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail("expected ',' or '}'", this.pos - 1);
    }
  }
}

/** Parses one JSON value; only JSON whitespace may follow it. Throws JsonParseError. */
export function parseStrictJson(text: string): JsonValue {
  const p = new Parser(text);
  const v = p.value(0);
  p.skipWs();
  if (p.pos !== text.length) p.fail('unexpected content after the JSON value');
  return v;
}
