import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The built package, as users load it: `import` and `require` of `kinesis-producer` from another
 * directory, resolved through the `exports` map to dist/. `npm test` builds first.
 */
const root = resolve(import.meta.dirname, '..');
let consumer: string;

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'index.js')) || !existsSync(join(root, 'dist', 'index.cjs'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)');
  }
  consumer = mkdtempSync(join(tmpdir(), 'kinesis-producer-consumer-'));
  mkdirSync(join(consumer, 'node_modules'));
  symlinkSync(root, join(consumer, 'node_modules', 'kinesis-producer'), 'dir');
});
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

const script = `
  const agg = new k.RecordAggregator();
  agg.add({ partitionKey: 'a', data: 'one' });
  agg.add({ partitionKey: 'b', data: 'two' });
  const built = agg.build();
  const back = k.deaggregate({ data: built.data, partitionKey: built.partitionKey });
  console.log(JSON.stringify({
    exports: Object.keys(k).sort(),
    back: back.map((u) => u.partitionKey + '=' + Buffer.from(u.data).toString()),
    // Two aggregates: their trailers are written, and checked, side by side.
    all: k.deaggregateAll(
      k.aggregateAll(['w', 'x', 'y', 'z'].map((key) => ({ partitionKey: key, data: key + '!' })), { maxCount: 2 }),
      { onCorrupt: 'throw' },
    ).map((u) => u.partitionKey + '=' + Buffer.from(u.data).toString()),
    errorIsTyped: (() => { try { agg.add({ partitionKey: '', data: 'x' }); } catch (e) { return e instanceof k.InvalidRecordError && e.code; } })(),
  }));
`;

function run(args: string[]): { exports: string[]; back: string[]; all: string[]; errorIsTyped: string } {
  return JSON.parse(execFileSync(process.execPath, args, { cwd: consumer, encoding: 'utf8' }));
}

// Node 20.19+ and 22.12+ can require() ES modules; turn that off so the test proves the CommonJS build
// stands alone (p-retry, an ES module only, must be bundled into it), as on older Node releases.
const noRequireEsm = process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module')
  ? ['--no-experimental-require-module']
  : [];

describe('the built package', () => {
  it('works with require() (CommonJS), without require(esm)', () => {
    const out = run([
      ...noRequireEsm,
      '-e',
      `const k = require('kinesis-producer'); new k.KinesisProducer({ streamName: 's', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }).close();${script}`,
    ]);
    expect(out.back).toEqual(['a=one', 'b=two']);
    expect(out.all).toEqual(['w=w!', 'x=x!', 'y=y!', 'z=z!']);
    expect(out.errorIsTyped).toBe('InvalidRecord');
  });

  it('works with import (ESM) and exposes the same API as require()', () => {
    const esm = run(['--input-type=module', '-e', `import * as k from 'kinesis-producer';${script}`]);
    const cjs = run(['-e', `const k = require('kinesis-producer');${script}`]);
    expect(esm.back).toEqual(['a=one', 'b=two']);
    expect(esm.all).toEqual(['w=w!', 'x=x!', 'y=y!', 'z=z!']);
    expect(esm.exports).toEqual(cjs.exports.filter((name) => name !== 'default' && name !== '__esModule'));
    expect(esm.exports).toContain('RecordAggregator');
  });
});

describe('the packed package', () => {
  it('holds every file its README links to', () => {
    // What `npm pack` would put in the tarball (scripts off: dist/ is built already).
    const listing = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
    });
    const packed = new Set(
      (JSON.parse(listing) as [{ files: { path: string }[] }])[0].files.map((f) => f.path),
    );
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    // Markdown links to a path inside the repository: not a URL, not an anchor on the same page.
    const linked = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((m) => m[1]!)
      .filter((target) => !/^[a-z][a-z+.-]*:/i.test(target));
    expect(linked.length).toBeGreaterThan(0);
    expect(linked.filter((target) => !packed.has(target))).toEqual([]);
  });
});
