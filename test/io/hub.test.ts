// Hub downloads against a loopback server that answers like the Hub's resolve endpoints
// (test/io/hub-server.ts): the cache layout huggingface_hub writes, no requests once
// cached, offline mode, tokens, resume, revisions, sharded weights, and the CLI end to end.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { IoError } from '../../src/errors.js';
import { writeShardedCheckpoint } from '../../src/io/checkpoint-dir.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { resolvePretrainedSync, snapshotDownload, type DownloadProgress } from '../../src/io/hub.js';
import { AutoModelForCausalLM } from '../../src/models/auto.js';
import { fixture } from '../helpers/data.js';
import { loadGolden } from '../helpers/golden.js';
import { AutoTokenizer } from '../../src/tokenizer/tokenizer.js';
import { COMMIT, gitBlobSha, startHubServer, type HubServer } from './hub-server.js';

const REPO = 'org/stories';
const MODEL_BYTES = 1044992; // stories260K-hf/model.safetensors
const HUB_ENV = ['HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_ENDPOINT', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_HUB_OFFLINE', 'HF_TOKEN_PATH'];

interface Fixture {
  src: string;
  home: string;
  cache: string;
  server: HubServer;
}

/** A server for REPO (and org/sharded when given), a fresh HF_HOME, and the HF_* env pointing at them (restored after). */
async function setup(t: TestContext, opts: { token?: string; sharded?: string } = {}): Promise<Fixture | undefined> {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  if (src === undefined) return undefined;
  const server = await startHubServer({ [REPO]: src, ...(opts.sharded !== undefined ? { 'org/sharded': opts.sharded } : {}) }, opts.token !== undefined ? { token: opts.token } : {});
  const home = mkdtempSync(join(tmpdir(), 'ftune-hf-home-'));
  const saved = HUB_ENV.map((k) => [k, process.env[k]] as const);
  for (const k of HUB_ENV) delete process.env[k];
  process.env['HF_HOME'] = home;
  process.env['HF_ENDPOINT'] = server.endpoint;
  t.after(async () => {
    for (const [k, v] of saved) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    await server.close();
    rmSync(home, { recursive: true, force: true });
  });
  return { src, home, cache: join(home, 'hub'), server };
}

test('hub: downloads into the HF cache layout (refs, blobs by etag, snapshot symlinks, .no_exist)', async (t) => {
  const f = await setup(t);
  if (f === undefined) return;
  const events: DownloadProgress[] = [];
  const dir = await snapshotDownload(REPO, { onProgress: (p) => events.push(p) });
  const folder = join(f.cache, 'models--org--stories');
  assert.equal(dir, join(folder, 'snapshots', COMMIT));
  assert.equal(readFileSync(join(folder, 'refs', 'main'), 'utf8'), COMMIT);
  const files = readdirSync(f.src).sort();
  assert.deepEqual(readdirSync(dir).sort(), files);
  for (const name of files) {
    const bytes: Buffer = readFileSync(join(f.src, name));
    const etag: string = name.endsWith('.safetensors') ? createHash('sha256').update(bytes).digest('hex') : gitBlobSha(bytes);
    assert.ok(lstatSync(join(dir, name)).isSymbolicLink(), name);
    assert.equal(readlinkSync(join(dir, name)), join('..', '..', 'blobs', etag), name);
    assert.deepEqual(readFileSync(join(folder, 'blobs', etag)), bytes, name);
  }
  assert.ok(existsSync(join(folder, '.no_exist', COMMIT, 'chat_template.jinja')));
  assert.ok(readdirSync(join(folder, 'blobs')).every((b) => !b.endsWith('.incomplete')));
  const done = events.filter((e) => e.done).map((e) => e.file).sort();
  assert.deepEqual(done, files);
  const model = events.filter((e) => e.file === 'model.safetensors');
  assert.equal(model.at(-1)?.loaded, MODEL_BYTES);
  assert.ok(model.every((e) => e.total === MODEL_BYTES && e.repoId === REPO));
  // The weights came through the LFS-style redirect.
  assert.ok(f.server.requests.some((r) => r.method === 'GET' && r.url.startsWith('/cdn/')));
});

test('hub: a cached repo loads with no requests, through fromPretrained and AutoTokenizer', async (t) => {
  const f = await setup(t);
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (f === undefined || goldenPath === undefined) return;
  const dir = await snapshotDownload(REPO);
  const served = f.server.requests.length;
  assert.ok(served > 0);
  assert.equal(await snapshotDownload(REPO), dir);
  assert.equal(resolvePretrainedSync(REPO), dir);
  await assertGoldenPrefix(REPO, goldenPath); // sync fromPretrained + async AutoTokenizer on the repo id
  assert.equal(AutoModelForCausalLM.fromPretrained(REPO).nameOrPath, REPO);
  assert.equal(f.server.requests.length, served);
});

test('hub: HF_HUB_OFFLINE uses the cache and names the repo and cache dir when it is missing', async (t) => {
  const f = await setup(t);
  if (f === undefined) return;
  process.env['HF_HUB_OFFLINE'] = '1';
  await assert.rejects(snapshotDownload(REPO), (e: unknown) => {
    assert.ok(e instanceof IoError);
    assert.match(e.message, /org\/stories@main is not in the Hugging Face cache/);
    assert.ok(e.message.includes(f.cache), e.message);
    assert.match(e.message, /HF_HUB_OFFLINE/);
    return true;
  });
  assert.throws(() => AutoModelForCausalLM.fromPretrained(REPO), /not in the Hugging Face cache/);
  assert.equal(f.server.requests.length, 0);
  delete process.env['HF_HUB_OFFLINE'];
  const dir = await snapshotDownload(REPO);
  const served = f.server.requests.length;
  process.env['HF_HUB_OFFLINE'] = 'true';
  assert.equal(await snapshotDownload(REPO), dir);
  assert.equal(f.server.requests.length, served);
});

test('hub: HF_TOKEN is sent as a Bearer token; without it a gated repo is a clear error', async (t) => {
  const f = await setup(t, { token: 'hf_test_token' });
  if (f === undefined) return;
  await assert.rejects(snapshotDownload(REPO), (e: unknown) => e instanceof IoError && /HTTP 401/.test(e.message) && /HF_TOKEN/.test(e.hint));
  process.env['HF_TOKEN'] = 'hf_test_token';
  await snapshotDownload(REPO);
  const resolves = f.server.requests.filter((r) => r.url.includes('/resolve/') && r.authorization === 'Bearer hf_test_token');
  assert.ok(resolves.length >= 6);
});

test('hub: a partial .incomplete blob is resumed with a Range request', async (t) => {
  const f = await setup(t);
  if (f === undefined) return;
  const bytes = readFileSync(join(f.src, 'model.safetensors'));
  const sha = createHash('sha256').update(bytes).digest('hex');
  const blobs = join(f.cache, 'models--org--stories', 'blobs');
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(blobs, `${sha}.incomplete`), bytes.subarray(0, 1000));
  const events: DownloadProgress[] = [];
  const dir = await snapshotDownload(REPO, { onProgress: (p) => events.push(p) });
  assert.ok(f.server.requests.some((r) => r.url === `/cdn/${sha}` && r.range === 'bytes=1000-'));
  assert.equal(events.find((e) => e.file === 'model.safetensors')?.loaded, 1000);
  assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), bytes);
  assert.equal(existsSync(join(blobs, `${sha}.incomplete`)), false);
});

test('hub: revisions (org/name@sha, a bad revision, a missing repo)', async (t) => {
  const f = await setup(t);
  if (f === undefined) return;
  const dir = await snapshotDownload(`${REPO}@${COMMIT}`);
  assert.equal(dir, join(f.cache, 'models--org--stories', 'snapshots', COMMIT));
  assert.equal(existsSync(join(f.cache, 'models--org--stories', 'refs')), false);
  await assert.rejects(snapshotDownload(`${REPO}@nope`), /RevisionNotFound[\s\S]*hint: revision nope does not exist/);
  await assert.rejects(snapshotDownload('org/absent'), (e: unknown) => e instanceof IoError && /RepositoryNotFound/.test(e.message));
  await assert.rejects(snapshotDownload(REPO, { revision: 'v2', kind: 'model' }), /RevisionNotFound/);
  await assert.rejects(snapshotDownload(`${REPO}@main`, { revision: 'v2' }), /given/);
});

test('hub: sharded safetensors (index + shards) download and reproduce the golden', async (t) => {
  const src = fixture(t, 'hf_models', 'stories260K-hf');
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (src === undefined || goldenPath === undefined) return;
  const sharded = mkdtempSync(join(tmpdir(), 'ftune-hf-sharded-'));
  t.after(() => rmSync(sharded, { recursive: true, force: true }));
  for (const name of readdirSync(src)) if (name !== 'model.safetensors') copyFileSync(join(src, name), join(sharded, name));
  const st = SafetensorsFile.open(join(src, 'model.safetensors'));
  const tensors = [...st.tensors].map(([name, info]) => ({ name, dtype: info.dtype, shape: info.shape, data: st.read(name) }));
  st.close();
  const written = writeShardedCheckpoint(sharded, tensors, { maxShardBytes: 300_000 });
  assert.ok(written.files.length >= 3);
  const f = await setup(t, { sharded });
  if (f === undefined) return;
  const dir = await snapshotDownload('org/sharded');
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort(), [...written.files].sort());
  assert.ok(existsSync(join(f.cache, 'models--org--sharded', '.no_exist', COMMIT, 'model.safetensors')));
  const served = f.server.requests.length;
  await assertGoldenPrefix('org/sharded', goldenPath);
  assert.equal(f.server.requests.length, served);
});

/** Greedy decoding from `name` matches the first `n` new ids of the first golden case (a prefix keeps the file fast). */
async function assertGoldenPrefix(name: string, goldenPath: string, n = 8): Promise<void> {
  const c = loadGolden(goldenPath).cases[0];
  assert.ok(c);
  const model = AutoModelForCausalLM.fromPretrained(name);
  const tokenizer = await AutoTokenizer.fromPretrained(name);
  const input = c.hf_equivalent.input_ids;
  assert.deepEqual(tokenizer.encode(c.prompt), c.prompt_token_ids);
  const out = model.generate(input, { maxNewTokens: n, temperature: 0 });
  assert.deepEqual(out.slice(input.length), c.generated_token_ids.slice(input.length - 1, input.length - 1 + n));
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Async spawn: the hub server lives in this process and must keep answering.
  const child = spawn(process.execPath, [resolve('dist/src/cli/main.js'), ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

test('ftune generate --model org/stories downloads, then reproduces the greedy golden; offline it runs from the cache', async (t) => {
  const f = await setup(t);
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (f === undefined || goldenPath === undefined) return;
  const golden = loadGolden(goldenPath).cases.find((c) => c.id === 'prompt_once_upon_a_time_64');
  assert.ok(golden);
  const args = ['generate', '--model', REPO, '--prompt', 'Once upon a time', '--temperature', '0', '--max-new-tokens', String(golden.hf_equivalent.max_new_tokens)];
  const env = { HF_HOME: f.home, HF_ENDPOINT: f.server.endpoint };
  const first = await runCli(args, env);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, golden.expected_text);
  assert.match(first.stderr, /downloaded org\/stories\/model\.safetensors \(1020\.5 KiB\)/);
  const served = f.server.requests.length;
  const short = args.map((a, i) => (args[i - 1] === '--max-new-tokens' ? '8' : a));
  const second = await runCli(short, { ...env, HF_HUB_OFFLINE: '1' });
  assert.equal(second.code, 0, second.stderr);
  assert.ok(second.stdout.length > 'Once upon a time'.length && golden.expected_text.startsWith(second.stdout), second.stdout);
  assert.doesNotMatch(second.stderr, /downloaded/);
  assert.equal(f.server.requests.length, served);
  const missing = await runCli(['generate', '--model', 'org/other', '--prompt', 'x'], { ...env, HF_HUB_OFFLINE: '1' });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: org\/other@main is not in the Hugging Face cache .*\nhint: /);
});
