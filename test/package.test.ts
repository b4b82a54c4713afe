import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
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

/**
 * `entry` (ESM) bundled with `kinesis-producer` and the SDK into one minified file, as a Lambda built
 * with `esbuild --minify` (CDK's NodejsFunction with `minify: true`) is, then run; its output.
 */
function runMinified(entry: string): string {
  const dir = mkdtempSync(join(consumer, 'bundle-'));
  writeFileSync(join(dir, 'entry.mjs'), entry);
  const out = join(dir, 'out.mjs');
  execFileSync(
    join(root, 'node_modules', '.bin', 'esbuild'),
    [
      join(dir, 'entry.mjs'),
      '--bundle',
      '--minify',
      '--platform=node',
      '--format=esm',
      `--outfile=${out}`,
      '--log-level=error',
      // The SDK's CommonJS files require() Node's modules.
      "--banner:js=import{createRequire}from'node:module';const require=createRequire(import.meta.url);",
    ],
    // The entry's own imports of the SDK resolve to the copy the package uses.
    { cwd: consumer, env: { ...process.env, NODE_PATH: join(root, 'node_modules') } },
  );
  return execFileSync(process.execPath, [out], {
    cwd: consumer,
    encoding: 'utf8',
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
}

// A minifier renames classes: whatever reads a class's name at run time reads the new one.
describe('the package bundled by a minifier', () => {
  it("keeps its errors' names", () => {
    const out = runMinified(`
      import * as k from 'kinesis-producer';
      let invalid;
      try { new k.RecordAggregator().add({ partitionKey: '', data: 'x' }); } catch (e) { invalid = e; }
      const full = new k.BufferFullError(1, 1, { records: 1, bytes: 1 });
      console.log(JSON.stringify([invalid.name, new k.ProducerClosedError().name, full.name, String(new k.AbortedError(undefined)).split(':')[0]]));
    `);
    expect(JSON.parse(out)).toEqual([
      'InvalidRecordError',
      'ProducerClosedError',
      'BufferFullError',
      'AbortedError',
    ]);
  });

  it('still warns of a client that would speak HTTP/2 to a plain-HTTP endpoint', () => {
    const out = runMinified(`
      import { KinesisClient } from '@aws-sdk/client-kinesis';
      import { KinesisProducer } from 'kinesis-producer';
      const client = new KinesisClient({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
      const warnings = [];
      const producer = new KinesisProducer({ client, logger: { debug() {}, info() {}, warn: (_, m) => warnings.push(m), error() {} } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await producer.close();
      console.log(JSON.stringify(warnings));
    `);
    expect(JSON.parse(out)).toEqual([expect.stringContaining('speaks HTTP/2')]);
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
