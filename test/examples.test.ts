// The seed's code examples, translated in examples/, run as users run them (npm run
// examples) and leave a full model and a PEFT adapter behind.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from './helpers/data.js';

test('examples/full-finetune, lora and qlora run and write their outputs', (t) => {
  if (fixture(t, 'hf_models', 'stories260K-hf') === undefined || fixture(t, 'datasets', 'alpaca_en_demo.json') === undefined) return;
  rmSync('examples/output', { recursive: true, force: true });
  for (const [script, file] of [['full-finetune', 'llama-finetuned/model.safetensors'], ['lora', 'llama3-lora/adapter_model.safetensors'], ['qlora', 'llama2-qlora/adapter_model.safetensors']] as const) {
    const r = spawnSync(process.execPath, [`dist/examples/${script}.js`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(`examples/output/${file}`), file);
  }
});
