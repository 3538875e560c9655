// Chat templates: every rendering in chat_templates/expected_renders.json (made with Python
// Jinja2 set up like transformers) reproduced exactly, through renderChatTemplate and, where
// a tokenizer.json exists, through Tokenizer.applyChatTemplate with its own special tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  chatTemplateOf, renderChatTemplate, specialTokenStrings, tokenContent, type ChatMessage, type ToolSpec,
} from '../../src/tokenizer/chat-template.js';
import { Tokenizer, readJsonObject } from '../../src/tokenizer/tokenizer.js';
import { ConfigError, FormatError } from '../../src/errors.js';
import { fixture } from '../helpers/data.js';

interface Render {
  template: string;
  template_file: string;
  messages: string;
  add_generation_prompt: boolean;
  tools: string | null;
  special_tokens: Record<string, string>;
  rendered: string;
}
interface Expected {
  messages: Record<string, ChatMessage[]>;
  tools: Record<string, ToolSpec[]>;
  renders: Render[];
}

test('all expected_renders.json renderings are reproduced exactly', (t) => {
  const path = fixture(t, 'chat_templates', 'expected_renders.json');
  if (!path) return;
  const e = JSON.parse(readFileSync(path, 'utf8')) as Expected;
  assert.equal(e.renders.length, 22);
  let viaTokenizer = 0;
  for (const r of e.renders) {
    const file = fixture(t, ...r.template_file.split('/'));
    if (!file) return;
    const messages = e.messages[r.messages];
    assert.ok(messages, r.messages);
    const tools = r.tools === null ? null : e.tools[r.tools] ?? null;
    const label = `${r.template} / ${r.messages} / gen=${r.add_generation_prompt}`;
    let template: string | undefined;
    if (file.endsWith('.jinja')) {
      template = readFileSync(file, 'utf8');
    } else {
      const config = readJsonObject(file);
      template = chatTemplateOf(config);
      // The special tokens transformers passes are the config's non-null token strings.
      assert.deepEqual(specialTokenStrings(config), r.special_tokens, label);
      if (existsSync(join(dirname(file), 'tokenizer.json'))) {
        const tok = Tokenizer.fromDir(dirname(file));
        const text = tok.applyChatTemplate(messages, { addGenerationPrompt: r.add_generation_prompt, tools });
        assert.equal(text, r.rendered, `${label} (Tokenizer.applyChatTemplate)`);
        const ids = tok.applyChatTemplate(messages, { addGenerationPrompt: r.add_generation_prompt, tools, tokenize: true });
        assert.deepEqual(ids, tok.encode(r.rendered, { addSpecialTokens: false }));
        viaTokenizer++;
      }
    }
    assert.ok(template !== undefined, label);
    const out = renderChatTemplate(template, messages, {
      addGenerationPrompt: r.add_generation_prompt, tools, specialTokens: r.special_tokens,
    });
    assert.equal(out, r.rendered, label);
  }
  assert.equal(viaTokenizer, 4); // phi-3-mini and llama2-tiny-random, two renders each
});

test('special-token fields: strings, AddedToken objects and nulls', () => {
  assert.equal(tokenContent('<s>'), '<s>');
  assert.equal(tokenContent({ __type: 'AddedToken', content: '</s>', lstrip: false }), '</s>');
  assert.equal(tokenContent(null), undefined);
  assert.deepEqual(
    specialTokenStrings({ bos_token: null, eos_token: { content: '<|im_end|>' } }, { unk_token: { content: '<unk>' }, bos_token: '<s>' }),
    { eos_token: '<|im_end|>', unk_token: '<unk>' }, // config's explicit null wins over the map
  );
});

test('chat_template as a list of named templates; malformed values are FormatErrors', () => {
  assert.equal(chatTemplateOf({ chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }] }), 'D');
  assert.equal(chatTemplateOf({}), undefined);
  assert.throws(() => chatTemplateOf({ chat_template: 42 }), (e: unknown) => e instanceof FormatError && /chat_template/.test(e.message));
});

test('a template that raises (Llama 2 alternation rule) gives a ConfigError with its message', (t) => {
  const dir = fixture(t, 'tokenizers', 'llama2-tiny-random');
  if (!dir) return;
  const tok = Tokenizer.fromDir(dir);
  const bad: ChatMessage[] = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
  assert.throws(() => tok.applyChatTemplate(bad), (e: unknown) => e instanceof ConfigError && /alternate/.test(e.message) && /hint:/.test(e.message));
  assert.throws(() => renderChatTemplate('{% if %}', []), FormatError);
});
