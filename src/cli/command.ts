// The shape of a CLI subcommand: typed flags with help text next to each, parsed with
// node:util parseArgs; `ftune <cmd> --help` is generated from the same table.
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { readUtf8File } from '../io/text-file.js';

export interface Flag {
  type: 'string' | 'boolean';
  help: string;
  /** Placeholder shown in help, e.g. DIR, N. */
  arg?: string;
  default?: string | boolean;
  short?: string;
}

export type Flags = Record<string, Flag>;
export type FlagValues = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: Flags;
  run(values: FlagValues, io: CliIo): Promise<void> | void;
}

/** Where a command writes: results to stdout, logs and progress to stderr. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export function parseFlags(cmd: Command, argv: string[]): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, f] of Object.entries(cmd.flags)) options[name] = f.short === undefined ? { type: f.type } : { type: f.type, short: f.short };
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new ConfigError(`ftune ${cmd.name}: unexpected argument ${JSON.stringify(positionals[0])}`, `see ftune ${cmd.name} --help`);
    const given = values as FlagValues;
    const file = typeof given['config'] === 'string' && cmd.flags['config'] !== undefined ? readConfigFile(cmd, given['config']) : {};
    const out: FlagValues = {};
    for (const [name, f] of Object.entries(cmd.flags)) out[name] = given[name] ?? file[name] ?? f.default;
    return out;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`ftune ${cmd.name}: ${(e as Error).message}`, `see ftune ${cmd.name} --help`);
  }
}

export function helpText(cmd: Command): string {
  const rows = Object.entries(cmd.flags).map(([name, f]) => {
    const left = `  --${name}${f.arg !== undefined ? ` ${f.arg}` : ''}`;
    const def = f.default !== undefined && f.default !== false ? ` (default: ${String(f.default)})` : '';
    return `${left.padEnd(28)} ${f.help}${def}`;
  });
  return `ftune ${cmd.name}: ${cmd.summary}\n\nusage: ${cmd.usage}\n\n${rows.join('\n')}\n`;
}

/** A required string flag. */
export function required(values: FlagValues, cmd: string, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new ConfigError(`ftune ${cmd}: --${name} is required`, `see ftune ${cmd} --help`);
  return v;
}

/** An optional number flag, checked against a predicate described by `allowed`. */
export function numberFlag(values: FlagValues, cmd: string, name: string, allowed: string, ok: (n: number) => boolean): number | undefined {
  const v = values[name];
  if (v === undefined || typeof v === 'boolean') return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new ConfigError(`ftune ${cmd}: --${name} ${v} is not ${allowed}`, `pass --${name} as ${allowed}`);
  return n;
}

/**
 * Reads a --config file (YAML or JSON; keys are flag names without the dashes) into flag
 * values. Precedence: command-line flag > config file > default.
 */
export function readConfigFile(cmd: Command, path: string): FlagValues {
  let parsed: unknown;
  try {
    const text = readUtf8File(path);
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`--config ${path}: ${(e as Error).message}`, 'pass a readable YAML or JSON file whose keys are flag names (e.g. "lr: 2e-4")');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`--config ${path}: expected a mapping of flag names to values`, 'write one "flag-name: value" per line');
  }
  const out: FlagValues = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const flag = cmd.flags[key];
    if (flag === undefined || key === 'config') {
      throw new ConfigError(`--config ${path}: unknown key "${key}"`, `keys are the flags of ftune ${cmd.name}: ${Object.keys(cmd.flags).filter((k) => k !== 'config').join(', ')}`);
    }
    if (flag.type === 'boolean') {
      if (typeof value !== 'boolean') throw new ConfigError(`--config ${path}: "${key}" must be true or false`, `write ${key}: true`);
      out[key] = value;
    } else {
      if (typeof value !== 'string' && typeof value !== 'number') throw new ConfigError(`--config ${path}: "${key}" must be a string or a number`, `write ${key}: <value>`);
      out[key] = String(value);
    }
  }
  return out;
}
