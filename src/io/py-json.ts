// Python-compatible JSON text: what `json.dumps(obj, indent=2, sort_keys=True)` prints,
// so adapter_config.json is byte-identical to the file PEFT writes (config.py
// PeftConfigMixin.save_pretrained). JavaScript numbers do not say whether Python held an
// int or a float, so floats are marked with PyFloat (0.0 prints "0.0", not "0").
import { compareCodePoints } from './safetensors-header.js';

/** A number Python holds as float: printed with repr() (1.0, 0.05, 1e-05). */
export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

export type PyValue = null | boolean | string | number | PyFloat | PyValue[] | { [key: string]: PyValue };

/** Python float repr: shortest round-trip digits, fixed for 1e-4 <= |x| < 1e16, else d.ddde[+-]XX. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant = '', expText = '0'] = x.toExponential().split('e');
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) body = `0.${'0'.repeat(-exp - 1)}${digits}`;
    else if (digits.length <= exp + 1) body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
    else body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return neg ? `-${body}` : body;
}

/** Python's f"{x:.{digits}f}": correctly rounded, exact ties to even (toFixed rounds ties away from zero). */
export function pyFixed(x: number, digits: number): string {
  const exact = x.toFixed(20); // exact for any tie at `digits` <= 15 decimals (ties are dyadic with few digits)
  const dot = exact.indexOf('.');
  const rest = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(rest)) return x.toFixed(digits);
  const kept = exact.slice(0, dot + 1 + digits);
  const last = Number(kept[kept.length - 1]);
  return last % 2 === 0 ? kept.replace(/\.$/, '') : x.toFixed(digits);
}

/** A JSON string literal as Python's json.dumps (ensure_ascii=True) writes it. */
export function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function dump(v: PyValue, indent: string): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return pyString(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloatRepr(v);
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + dump(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v).sort(compareCodePoints);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${pyString(k)}: ${dump(v[k] ?? null, inner)}`).join(',\n')}\n${indent}}`;
}

/** json.dumps(value, indent=2, sort_keys=True): no trailing newline. */
export function pyJsonDumps(value: PyValue): string {
  return dump(value, '');
}

/** json.dumps(value) with default arguments: one line, ", " and ": ", keys in insertion order. */
export function pyJsonDumpsCompact(v: PyValue): string {
  if (v === null || typeof v !== 'object' || v instanceof PyFloat) return dump(v, '');
  if (Array.isArray(v)) return `[${v.map(pyJsonDumpsCompact).join(', ')}]`;
  return `{${Object.keys(v).map((k) => `${pyString(k)}: ${pyJsonDumpsCompact(v[k] ?? null)}`).join(', ')}}`;
}
