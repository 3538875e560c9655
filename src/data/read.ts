// Dataset files: a JSON array of objects (.json) or one JSON object per line (.jsonl; a
// .json file that does not start with `[` is read as JSON lines too, as HF datasets does).
// Every row keeps the 1-based line it starts on so later errors can say `file:line`.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { FormatError, IoError } from '../errors.js';

export type Row = Record<string, unknown>;

/** One dataset record and the line of the file where it starts (1-based). */
export interface LocatedRow {
  row: Row;
  line: number;
}

function isRow(v: unknown): v is Row {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** Byte offsets where each line starts (a line ends at 0x0A). */
function lineStarts(bytes: Uint8Array): number[] {
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) starts.push(i + 1);
  return starts;
}

/** Strict UTF-8 decoding; on failure names the first line holding invalid bytes. */
function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const starts = lineStarts(bytes);
    const line = new TextDecoder('utf-8', { fatal: true });
    for (let i = 0; i < starts.length; i++) {
      const end = starts[i + 1] ?? bytes.length;
      try {
        line.decode(bytes.subarray(starts[i], end));
      } catch {
        throw new FormatError(`${path}:${i + 1}: invalid UTF-8`,
          'datasets must be UTF-8 text; re-encode the file (e.g. `iconv -f latin1 -t utf-8`)');
      }
    }
    throw new FormatError(`${path}: invalid UTF-8`, 're-encode the file as UTF-8');
  }
}

/** 1-based line of character offset `pos` in `text`. */
function lineOf(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Line of a JSON.parse error, from V8's "at position N" / "line N" wording (1 when absent). */
function errorLine(text: string, message: string): number {
  const byLine = /line (\d+)/.exec(message);
  if (byLine?.[1] !== undefined) return Number(byLine[1]);
  const byPos = /position (\d+)/.exec(message);
  return byPos?.[1] !== undefined ? lineOf(text, Number(byPos[1])) : 1;
}

/**
 * Lines where the elements of a top-level JSON array start. Scans the (already valid)
 * text once, tracking strings and nesting depth.
 */
function arrayElementLines(text: string): number[] {
  const lines: number[] = [];
  let depth = 0;
  let line = 1;
  let inString = false;
  let expecting = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (depth === 1 && expecting && c !== ']') {
      lines.push(line);
      expecting = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expecting = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expecting = true;
  }
  return lines;
}

function parseJsonArray(text: string, path: string): LocatedRow[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new FormatError(`${path}:${errorLine(text, msg)}: invalid JSON (${msg})`,
      'fix the JSON syntax near that line, or write one object per line as .jsonl');
  }
  if (!Array.isArray(value)) {
    throw new FormatError(`${path}:1: expected a JSON array of objects, found ${kindOf(value)}`,
      'a .json dataset is a list `[{...}, {...}]`; use .jsonl for one object per line');
  }
  const lines = arrayElementLines(text);
  return value.map((row: unknown, i) => {
    const line = lines[i] ?? 1;
    if (!isRow(row)) {
      throw new FormatError(`${path}:${line}: element ${i} is ${kindOf(row)}, expected an object`,
        'every dataset row is a JSON object such as {"text": "..."}');
    }
    return { row, line };
  });
}

function parseJsonLines(text: string, path: string): LocatedRow[] {
  const rows: LocatedRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const src = (lines[i] ?? '').trim();
    if (src === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(src);
    } catch (e) {
      throw new FormatError(`${path}:${i + 1}: invalid JSON on line ${i + 1} (${(e as Error).message})`,
        'each line of a .jsonl file must be one complete JSON object');
    }
    if (!isRow(value)) {
      throw new FormatError(`${path}:${i + 1}: line holds ${kindOf(value)}, expected an object`,
        'each line of a .jsonl file must be one JSON object such as {"text": "..."}');
    }
    rows.push({ row: value, line: i + 1 });
  }
  return rows;
}

/**
 * Rows of a .json (array, or JSON lines) or .jsonl dataset with their start lines.
 * Throws FormatError on invalid UTF-8, invalid JSON, non-object rows or an empty file.
 */
export function readRows(path: string): LocatedRow[] {
  const ext = extname(path).toLowerCase();
  if (ext !== '.json' && ext !== '.jsonl') {
    throw new FormatError(`${path}: unsupported dataset extension "${ext}"`,
      'use a .json file (an array of objects) or a .jsonl file (one object per line)');
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new IoError(`cannot read dataset ${path}: ${(e as Error).message}`, 'check the path passed as --data/--eval-data');
  }
  const text = decodeUtf8(bytes, path).replace(/^\uFEFF/, '');
  const isArray = ext === '.json' && text.trimStart().startsWith('[');
  const rows = isArray ? parseJsonArray(text, path) : parseJsonLines(text, path);
  if (rows.length === 0) {
    throw new FormatError(`${path}: empty dataset (no rows)`, 'add at least one example to the file');
  }
  return rows;
}
