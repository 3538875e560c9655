#!/usr/bin/env node
// `ftune` entry point: dispatches to one module per subcommand (explicit registry).
// Typed errors print their message and hint, exit code 1; --debug adds the stack.
import { native } from '../backend/native/addon.js';
import { FtuneError } from '../errors.js';
import { helpText, parseFlags, type CliIo, type Command } from './command.js';
import { convertLlama2cCommand } from './commands/convert-llama2c.js';
import { generateCommand } from './commands/generate.js';
import { trainCommand } from './commands/train.js';
import { evalCommand } from './commands/eval.js';
import { mergeCommand } from './commands/merge.js';
import { quantizeCommand } from './commands/quantize.js';
import { benchCommand } from './commands/bench.js';
import { estimateCommand } from './commands/estimate.js';
import { compareCommand } from './commands/compare.js';
import { demoCommand } from './commands/demo.js';

const COMMANDS: readonly Command[] = [
  demoCommand, trainCommand, evalCommand, generateCommand, compareCommand, estimateCommand, mergeCommand, quantizeCommand, benchCommand, convertLlama2cCommand,
];

function usage(): string {
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(18)} ${c.summary}`);
  return `ftune: fine-tune LLMs (full, LoRA, QLoRA) on the CPU, in Hugging Face formats\n\nusage: ftune <command> [flags]\n\ncommands:\n${rows.join('\n')}\n\nftune <command> --help lists the flags of a command. --debug prints stack traces.\n`;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage());
    return name === undefined ? 1 : 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined) {
    io.stderr(`error: unknown command ${JSON.stringify(name)}\nhint: one of ${COMMANDS.map((c) => c.name).join(', ')}; see ftune --help\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(helpText(cmd));
    return 0;
  }
  try {
    native(); // loads the addon and applies FTUNE_ISA / FTUNE_THREADS before any work
    await cmd.run(parseFlags(cmd, rest), io);
    return 0;
  } catch (e) {
    if (debug) io.stderr(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    else if (e instanceof FtuneError) io.stderr(`error: ${e.message}\n`);
    else io.stderr(`error: ${e instanceof Error ? e.message : String(e)}\nhint: this is unexpected; rerun with --debug for a stack trace and report it\n`);
    return 1;
  }
}

const io: CliIo = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };
main(process.argv.slice(2), io).then((code) => {
  process.exitCode = code;
});
