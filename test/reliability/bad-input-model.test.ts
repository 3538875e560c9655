// Bad model inputs: malformed safetensors, config.json and 4-bit checkpoints, each built
// from a temp copy of stories260K-hf. Every case must end in the named typed error with a
// hint, and loading must allocate nothing near the absurd sizes a header claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, IoError } from '../../src/errors.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { BitsAndBytesConfig } from '../../src/quant/config.js';
import { memoryStats, resetPeak } from '../../src/tensor/memory.js';
import { fixture } from '../helpers/data.js';
import {
  copyDir, editJson, editSafetensorsHeader, runCases, patchBytes, tempDir, truncateFile, u64le, type BadCase,
} from '../helpers/corrupt.js';

const ST = 'model.safetensors';
const EMBED = 'model.embed_tokens.weight';
type Header = Record<string, unknown>;
type Entry = { dtype: string; shape: number[]; data_offsets: number[] };

function entry(h: Header, name: string): Entry {
  const e = h[name];
  if (e === undefined) throw new Error(`fixture lacks ${name}`);
  return e as Entry;
}
const st = (dir: string): string => join(dir, ST);
const cfg = (dir: string): string => join(dir, 'config.json');

/** Loads the model and checks that no allocation came near an absurd claimed size. */
function load(dir: string): void {
  const before = memoryStats().totalCurrent;
  resetPeak();
  try {
    AutoModelForCausalLM.fromPretrained(dir);
  } finally {
    // stories260K is ~1 MB of weights; 64 MiB over the start means something trusted a header.
    assert.ok(memoryStats().totalPeak - before < 64 * 2 ** 20, 'a malformed input made the loader allocate > 64 MiB');
  }
}

const SAFETENSORS: BadCase[] = [
  { name: 'empty file', build: (d) => writeFileSync(st(d), ''), error: FormatError, message: /shorter than 8 bytes/ },
  { name: 'truncated to 5 bytes', build: (d) => truncateFile(st(d), 5), error: FormatError, message: /shorter than 8 bytes/ },
  { name: 'truncated inside the header', build: (d) => truncateFile(st(d), 100), error: FormatError, message: /runs past the end of the file/ },
  { name: 'truncated data', build: (d) => truncateFile(st(d), -100), error: FormatError, message: /data truncated/ },
  { name: 'trailing bytes', build: (d) => appendFileSync(st(d), Buffer.alloc(12)), error: FormatError, message: /12 trailing bytes/ },
  { name: 'header length 2^63', build: (d) => patchBytes(st(d), 0, u64le(1n << 63n)), error: FormatError, message: /exceeds the maximum/ },
  { name: 'header length 90 MB in a 1 MB file', build: (d) => patchBytes(st(d), 0, u64le(90_000_000n)), error: FormatError, message: /runs past the end/ },
  { name: 'header is not JSON', build: (d) => patchBytes(st(d), 8, Buffer.from('x')), error: FormatError, message: /does not start with '\{'/ },
  { name: 'header has invalid UTF-8', build: (d) => patchBytes(st(d), 10, Uint8Array.of(0xff, 0xfe)), error: FormatError, message: /not valid UTF-8/ },
  { name: 'unknown dtype', build: (d) => editSafetensorsHeader(st(d), (h) => { entry(h, EMBED).dtype = 'Q9'; }), error: FormatError, message: /unknown dtype "Q9"/ },
  { name: 'integer dtype for a weight', build: (d) => editSafetensorsHeader(st(d), (h) => { entry(h, EMBED).dtype = 'I32'; }), error: FormatError, message: /dtype I32; only F32, BF16 and F16/ },
  { name: 'dtype of the wrong width', build: (d) => editSafetensorsHeader(st(d), (h) => { entry(h, EMBED).dtype = 'F16'; }), error: FormatError, message: /byte size .* != / },
  { name: 'transposed shape', build: (d) => editSafetensorsHeader(st(d), (h) => { entry(h, EMBED).shape = [64, 512]; }), error: FormatError, message: /shape \[64, 512\], config.json implies \[512, 64\]/ },
  { name: 'absurd shape', build: (d) => editSafetensorsHeader(st(d), (h) => { entry(h, EMBED).shape = [1e15, 1e15]; }), error: FormatError, message: /byte size/ },
  { name: 'negative dimension', build: (d) => editSafetensorsHeader(st(d), (h) => { entry(h, EMBED).shape = [-512, -64]; }), error: FormatError, message: /not a non-negative integer/ },
  { name: 'shape is a string', build: (d) => editSafetensorsHeader(st(d), (h) => { (h[EMBED] as Header)['shape'] = '512x64'; }), error: FormatError, message: /"shape" is not an array/ },
  { name: 'missing data_offsets', build: (d) => editSafetensorsHeader(st(d), (h) => { delete (h[EMBED] as Header)['data_offsets']; }), error: FormatError, message: /missing field "data_offsets"/ },
  { name: 'overlapping tensors', build: (d) => editSafetensorsHeader(st(d), (h) => { const e = entry(h, 'model.norm.weight'); e.data_offsets = [0, 256]; }), error: FormatError, message: /overlap|gap/ },
  { name: 'tensor renamed (missing weight)', build: (d) => editSafetensorsHeader(st(d), (h) => { h['model.embed_tokenz.weight'] = h[EMBED]; delete h[EMBED]; }), error: FormatError, message: /model.embed_tokens.weight is missing/ },
  { name: 'no model.safetensors', build: (d) => rmSync(st(d)), error: FormatError, message: /no model.safetensors or model.safetensors.index.json/ },
  { name: 'sharded index is not JSON', build: (d) => { rmSync(st(d)); writeFileSync(join(d, 'model.safetensors.index.json'), '{"weight_map": '); }, error: FormatError, message: /not valid JSON/ },
  { name: 'index maps to a missing shard', build: (d) => { rmSync(st(d)); writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { [EMBED]: 'model-00001-of-00002.safetensors' } })); }, error: FormatError, message: /does not exist/ },
  { name: 'index escapes the directory', build: (d) => { rmSync(st(d)); writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { [EMBED]: '../model.safetensors' } })); }, error: FormatError, message: /not a file name in the directory/ },
];

const CONFIG: BadCase[] = [
  { name: 'missing config.json', build: (d) => rmSync(cfg(d)), error: IoError, message: /cannot read .*config.json/ },
  { name: 'empty config.json', build: (d) => writeFileSync(cfg(d), ''), error: FormatError, message: /invalid JSON/ },
  { name: 'truncated config.json', build: (d) => truncateFile(cfg(d), 100), error: FormatError, message: /invalid JSON/ },
  { name: 'invalid UTF-8', build: (d) => writeFileSync(cfg(d), Buffer.concat([Buffer.from('{"model_type": "lla'), Buffer.from([0xc3, 0x28]), Buffer.from('ma"}')])), error: FormatError, message: /not valid UTF-8/ },
  { name: 'top-level array', build: (d) => writeFileSync(cfg(d), '[1, 2]'), error: FormatError, message: /model_type undefined is not supported/ },
  { name: 'unsupported model_type', build: (d) => editJson(cfg(d), (j) => { j['model_type'] = 'gpt2'; }), error: FormatError, message: /model_type "gpt2" is not supported/ },
  { name: 'missing hidden_size', build: (d) => editJson(cfg(d), (j) => { delete j['hidden_size']; }), error: FormatError, message: /missing field "hidden_size"/ },
  { name: 'hidden_size is a string', build: (d) => editJson(cfg(d), (j) => { j['hidden_size'] = '64'; }), error: FormatError, message: /"hidden_size" must be a number, got "64"/ },
  { name: 'negative vocab_size', build: (d) => editJson(cfg(d), (j) => { j['vocab_size'] = -512; }), error: FormatError, message: /"vocab_size" must be a positive integer/ },
  { name: 'fractional num_hidden_layers', build: (d) => editJson(cfg(d), (j) => { j['num_hidden_layers'] = 2.5; }), error: FormatError, message: /"num_hidden_layers" must be a positive integer/ },
  { name: 'absurd vocab_size', build: (d) => editJson(cfg(d), (j) => { j['vocab_size'] = 1e12; }), error: FormatError, message: /config.json implies \[1000000000000, 64\]/ },
  { name: 'absurd hidden_size', build: (d) => editJson(cfg(d), (j) => { j['hidden_size'] = 2 ** 40; j['head_dim'] = 2 ** 37; }), error: FormatError, message: /config.json implies/ },
  { name: 'absurd intermediate_size', build: (d) => editJson(cfg(d), (j) => { j['intermediate_size'] = 1e300; }), error: FormatError, message: /config.json implies/ },
  { name: 'more layers than the weights', build: (d) => editJson(cfg(d), (j) => { j['num_hidden_layers'] = 1000; }), error: FormatError, message: /model.layers.5.* is missing/ },
  { name: 'heads not a multiple of kv heads', build: (d) => editJson(cfg(d), (j) => { j['num_attention_heads'] = 6; }), error: FormatError, message: /not a multiple of num_key_value_heads/ },
  { name: 'odd head_dim', build: (d) => editJson(cfg(d), (j) => { j['head_dim'] = 7; }), error: FormatError, message: /head_dim 7 must be even/ },
  { name: 'unsupported activation', build: (d) => editJson(cfg(d), (j) => { j['hidden_act'] = 'gelu'; }), error: FormatError, message: /hidden_act "gelu"/ },
  { name: 'unsupported rope type', build: (d) => editJson(cfg(d), (j) => { j['rope_scaling'] = { rope_type: 'yarn', factor: 4 }; }), error: FormatError, message: /rope type "yarn"/ },
  { name: 'rope_scaling is a string', build: (d) => editJson(cfg(d), (j) => { j['rope_scaling'] = 'linear'; }), error: FormatError, message: /"rope_scaling" must be an object/ },
  { name: 'eos_token_id is a string', build: (d) => editJson(cfg(d), (j) => { j['eos_token_id'] = '</s>'; }), error: FormatError, message: /"eos_token_id" must be a token id/ },
  { name: 'tie_word_embeddings is a string', build: (d) => editJson(cfg(d), (j) => { j['tie_word_embeddings'] = 'yes'; }), error: FormatError, message: /"tie_word_embeddings" must be true or false/ },
  { name: '8-bit quantization_config', build: (d) => editJson(cfg(d), (j) => { j['quantization_config'] = { quant_method: 'bitsandbytes', load_in_8bit: true }; }), error: FormatError, message: /only bitsandbytes 4-bit/ },
];

test('safetensors: every malformed file is a typed error with a hint, before any large allocation', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  t.diagnostic(`safetensors cases: ${runCases(SAFETENSORS, (d) => copyDir(src, d), load)}`);
});

test('safetensors: the reader alone rejects a claimed header before reading it', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf', ST);
  if (src === undefined) return;
  const { dir, cleanup } = tempDir('bad-st-open');
  try {
    const p = join(dir, ST);
    writeFileSync(p, readFileSync(src));
    patchBytes(p, 0, u64le(99_999_999n));
    const reads: number[] = [];
    assert.throws(() => SafetensorsFile.open(p, { onRead: (_pos, len) => reads.push(len) }), FormatError);
    assert.deepEqual(reads, [8], 'only the 8-byte prefix is read before the length is rejected');
  } finally {
    cleanup();
  }
});

test('config.json: every malformed config is a typed error naming the field', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  t.diagnostic(`config.json cases: ${runCases(CONFIG, (d) => copyDir(src, d), load)}`);
});

/** Quantizes stories260K (NF4, double quant) into `dir` through the library. */
function writeQuantized(src: string, dir: string): void {
  const model = AutoModelForCausalLM.fromPretrained(src, { quantizationConfig: BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) });
  model.savePretrained(dir);
}

const Q = 'model.layers.0.self_attn.q_proj.weight';
const QSTATE = `${Q}.quant_state.bitsandbytes__nf4`;

/** Replaces the bytes of the quant_state tensor of q_proj (same length, space padded). */
function setQuantState(dir: string, text: string | Uint8Array): void {
  const p = st(dir);
  const f = SafetensorsFile.open(p);
  const info = f.info(QSTATE);
  const start = f.dataStart + info.begin;
  f.close();
  const bytes = Buffer.alloc(info.end - info.begin, 0x20);
  const src = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  if (src.length > bytes.length) throw new Error('quant_state replacement too long');
  src.copy(bytes);
  patchBytes(p, start, bytes);
}

const QUANT: BadCase[] = [
  { name: 'quant_state not JSON', build: (d) => setQuantState(d, '{"quant_type": nf4'), error: FormatError, message: /quant_state.bitsandbytes__nf4 is not valid JSON/ },
  { name: 'quant_state is null', build: (d) => setQuantState(d, 'null'), error: FormatError, message: /quant_state.* is not a JSON object/ },
  { name: 'quant_state invalid UTF-8', build: (d) => setQuantState(d, Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x7d)), error: FormatError, message: /quant_state/ },
  { name: 'quant_state shape mismatch', build: (d) => setQuantState(d, '{"quant_type":"nf4","blocksize":64,"dtype":"float32","shape":[32,64]}'), error: FormatError, message: /quant_state shape \[32,64\] does not match/ },
  { name: 'quant_state blocksize 0', build: (d) => setQuantState(d, '{"quant_type":"nf4","blocksize":0,"dtype":"float32","shape":[64,64]}'), error: FormatError, message: /no valid blocksize/ },
  { name: 'quant_state blocksize 48', build: (d) => setQuantState(d, '{"quant_type":"nf4","blocksize":48,"dtype":"float32","shape":[64,64]}'), error: FormatError, message: /no valid blocksize \(48\)/ },
  { name: 'quant_state nested blocksize -1', build: (d) => setQuantState(d, '{"quant_type":"nf4","blocksize":64,"dtype":"float32","shape":[64,64],"nested_blocksize":-1,"nested_offset":0.0}'), error: FormatError, message: /nested_blocksize/ },
  { name: 'absmax missing', build: (d) => editSafetensorsHeader(st(d), (h) => { h[`${Q}.absmaz`] = h[`${Q}.absmax`]; delete h[`${Q}.absmax`]; }), error: FormatError, message: /missing .*absmax/ },
  { name: 'quant_map of 32 values', build: (d) => editSafetensorsHeader(st(d), (h) => { const e = entry(h, `${Q}.nested_quant_map`); e.dtype = 'F16'; e.shape = [512]; }), error: FormatError, message: /nested_quant_map is F16/ },
  { name: 'quant_map of 8 values', build: (d) => editSafetensorsHeader(st(d), (h) => { const e = entry(h, `${Q}.quant_map`); e.dtype = 'F64'; e.shape = [8]; }), error: FormatError, message: /quant_map .*(F64|16)/ },
  { name: 'codes of the wrong dtype', build: (d) => editSafetensorsHeader(st(d), (h) => { const e = entry(h, Q); e.dtype = 'I8'; }), error: FormatError, message: /is I8, expected U8/ },
  { name: 'unknown bnb_4bit_quant_type', build: (d) => editJson(cfg(d), (j) => { (j['quantization_config'] as Header)['bnb_4bit_quant_type'] = 'int3'; }), error: ConfigError, message: /bnb4bitQuantType "int3"/ },
  { name: 'quantization_config is a string', build: (d) => editJson(cfg(d), (j) => { j['quantization_config'] = 'nf4'; }), error: FormatError, message: /quantization_config must be an object/ },
];

test('4-bit checkpoints: corrupt quant states and tensors are typed errors', (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return;
  const { dir: root, cleanup } = tempDir('bad-q4');
  try {
    const good = join(root, 'good');
    writeQuantized(src, good);
    AutoModelForCausalLM.fromPretrained(good); // the unbroken copy loads
    t.diagnostic(`4-bit checkpoint cases: ${runCases(QUANT, (d) => copyDir(good, d), load)}`);
  } finally {
    cleanup();
  }
});
