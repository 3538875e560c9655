// llama2.c goldens (../shared/data/llama2c/golden.json) and the check that a model
// directory reproduces them with greedy decoding.
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { AutoTokenizer } from '../../src/tokenizer/tokenizer.js';

export interface GoldenCase {
  id: string;
  prompt: string;
  expected_text: string;
  prompt_token_ids: number[];
  generated_token_ids: number[];
  hf_equivalent: { input_ids: number[]; max_new_tokens: number };
}
export interface Golden {
  cases: GoldenCase[];
  first_step_logits: { top10_token_ids: number[]; top10_logits: number[]; logits_sum: number };
}

export function loadGolden(path: string): Golden {
  return JSON.parse(readFileSync(path, 'utf8')) as Golden;
}

/** Greedy-generates every golden case from `dir` and checks ids and text exactly. */
export async function assertGoldens(dir: string, golden: Golden): Promise<void> {
  const model = AutoModelForCausalLM.fromPretrained(dir);
  const tokenizer = await AutoTokenizer.fromPretrained(dir);
  for (const c of golden.cases) {
    const { input_ids: input, max_new_tokens: n } = c.hf_equivalent;
    assert.deepEqual(tokenizer.encode(c.prompt), c.prompt_token_ids, `${c.id}: prompt ids`);
    const out = model.generate(input, { maxNewTokens: n, temperature: 0 });
    const expectedNew = c.generated_token_ids.slice(input.length - 1);
    assert.deepEqual(out.slice(input.length), expectedNew, `${c.id}: generated ids`);
    assert.equal(tokenizer.decode(out, { skipSpecialTokens: true }), c.expected_text, `${c.id}: text`);
  }
}

