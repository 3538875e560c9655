// The atomic building blocks the kill trials rely on: a directory built with
// buildDirAtomic appears whole or not at all and never replaces a user's directory
// unasked; publishInto swaps files into a directory; removeStaleTemps deletes only the
// temp names of writers that are gone.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoError } from '../../src/errors.js';
import { buildDirAtomic, isTempName, publishInto, removeDirAtomic, removeStaleTemps, tempPath } from '../../src/io/atomic.js';

function scratch(t: import('node:test').TestContext): string {
  const root = mkdtempSync(join(tmpdir(), 'ftune-atomic-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

test('buildDirAtomic: whole or nothing, and an existing non-empty directory is kept unless replace', (t) => {
  const root = scratch(t);
  const out = join(root, 'model');
  const boom = new Error('writer failed');
  assert.throws(() => buildDirAtomic(out, (d) => { writeFileSync(join(d, 'a.json'), '{}'); throw boom; }), boom);
  assert.deepEqual(readdirSync(root), [], 'nothing under the final name, no staging left');
  buildDirAtomic(out, (d) => writeFileSync(join(d, 'a.json'), '1'));
  assert.deepEqual(readdirSync(root), ['model']);
  assert.throws(() => buildDirAtomic(out, (d) => writeFileSync(join(d, 'a.json'), '2')), IoError);
  assert.equal(readFileSync(join(out, 'a.json'), 'utf8'), '1', 'the existing directory is untouched');
  buildDirAtomic(out, (d) => writeFileSync(join(d, 'b.json'), '3'), { replace: true });
  assert.deepEqual(readdirSync(out), ['b.json']);
  assert.deepEqual(readdirSync(root), ['model'], 'the replaced directory is gone, no temp names');
  mkdirSync(join(root, 'empty'));
  buildDirAtomic(join(root, 'empty'), (d) => writeFileSync(join(d, 'c'), 'x'));
  assert.deepEqual(readdirSync(join(root, 'empty')), ['c'], 'an empty directory is filled');
  removeDirAtomic(out);
  assert.deepEqual(readdirSync(root), ['empty']);
});

test('publishInto: files and subdirectories replace their old versions; the staging directory goes away', (t) => {
  const root = scratch(t);
  mkdirSync(join(root, 'sub'));
  writeFileSync(join(root, 'sub', 'old.txt'), 'old');
  writeFileSync(join(root, 'keep.txt'), 'keep');
  writeFileSync(join(root, 'w.bin'), 'old');
  publishInto(root, (d) => {
    writeFileSync(join(d, 'w.bin'), 'new');
    mkdirSync(join(d, 'sub'));
    writeFileSync(join(d, 'sub', 'new.txt'), 'new');
  });
  assert.deepEqual(readdirSync(root).sort(), ['keep.txt', 'sub', 'w.bin']);
  assert.equal(readFileSync(join(root, 'w.bin'), 'utf8'), 'new');
  assert.deepEqual(readdirSync(join(root, 'sub')), ['new.txt']);
});

test('removeStaleTemps removes the temp names of dead writers only', (t) => {
  const root = scratch(t);
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  assert.ok(dead !== undefined && dead !== process.pid);
  const names = [`.model.safetensors.tmp-${dead}-0a1b2c`, `.checkpoint-4.tmp-${dead}-ff00ff`, `.checkpoint-2.old-${dead}-123456`, `.other.tmp-${dead}`];
  for (const n of names.slice(0, 2)) writeFileSync(join(root, n), 'partial');
  for (const n of names.slice(2)) mkdirSync(join(root, n));
  const mine = tempPath(join(root, 'adapter_model.safetensors'));
  writeFileSync(mine, 'in progress');
  writeFileSync(join(root, 'model.safetensors.tmp-1'), 'not hidden: not ours');
  for (const n of [...names, mine.slice(root.length + 1)]) assert.ok(isTempName(n), n);
  assert.ok(!isTempName('model.safetensors.tmp-1') && !isTempName('checkpoint-4'));
  assert.deepEqual(removeStaleTemps(root, 'other'), [`.other.tmp-${dead}`]);
  assert.deepEqual(removeStaleTemps(root), names.slice(0, 3).sort());
  assert.deepEqual(readdirSync(root).sort(), [mine.slice(root.length + 1), 'model.safetensors.tmp-1'].sort());
  assert.ok(existsSync(mine), 'a live writer keeps its temp file');
});
