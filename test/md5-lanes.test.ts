import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AggregatableRecord,
  AggregateBuilder,
  type PartitionKeyEntry,
  writeAggregateDigests,
} from '../src/aggregator.js';
import { deaggregate } from '../src/index.js';
import { md5Each, useMd5Lanes, type WebAssemblyApi } from '../src/md5-lanes.js';

const openssl = (data: Uint8Array) => createHash('md5').update(data).digest('hex');
const hex = (digests: readonly Uint8Array[]) => digests.map((d) => Buffer.from(d).toString('hex'));
const digestsOf = (messages: readonly Uint8Array[]) => {
  const digests = messages.map(() => new Uint8Array(16));
  md5Each(messages, digests);
  return hex(digests);
};

// Lengths at the edges of MD5's padding (55/56 bytes short of a block) and of the 16 KiB chunks a
// lane is fed in, and messages of several chunks.
const EDGES = [
  0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 16_320, 16_376, 16_383, 16_384, 16_385, 16_448, 51_200, 100_000,
];

afterEach(() => {
  useMd5Lanes(true);
});

describe('md5Each: MD5 of many messages, four lanes at a time', () => {
  it('runs on WebAssembly SIMD here, and agrees with OpenSSL at every padding and chunk edge', () => {
    expect(useMd5Lanes(true)).toBe(true);
    const messages = EDGES.map((length) => randomBytes(length));
    expect(digestsOf(messages)).toEqual(messages.map(openssl));
  });

  it('agrees with OpenSSL for any mix of lengths, whichever lane each message lands in', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 40_000 }), { minLength: 1, maxLength: 13 }), (lengths) => {
        const messages = lengths.map((length) => randomBytes(length));
        expect(digestsOf(messages)).toEqual(messages.map(openssl));
      }),
      { numRuns: 60 },
    );
  });

  it('gives the same digests with the lanes turned off (OpenSSL for each)', () => {
    const messages = [
      randomBytes(3),
      randomBytes(70_000),
      randomBytes(64),
      randomBytes(1000),
      randomBytes(0),
    ];
    const withLanes = digestsOf(messages);
    expect(useMd5Lanes(false)).toBe(false);
    expect(digestsOf(messages)).toEqual(withLanes);
    expect(withLanes).toEqual(messages.map(openssl));
  });

  it('falls back to OpenSSL where WebAssembly cannot build the lanes', () => {
    const real = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const refusing: WebAssemblyApi = {
      ...real,
      Module: class {
        constructor() {
          throw new Error('WebAssembly.Module(): invalid SIMD opcode');
        }
      },
    };
    expect(useMd5Lanes(true, refusing)).toBe(false);
    const messages = [randomBytes(100), randomBytes(20_000), randomBytes(64)];
    expect(digestsOf(messages)).toEqual(messages.map(openssl));
  });

  it('gives right digests when a message runs code that hashes again (a Uint8Array subclass)', () => {
    const inner = [randomBytes(5000), randomBytes(300)];
    let innerDigests: string[] = [];
    class Sneaky extends Uint8Array {
      override subarray(begin?: number, end?: number): Uint8Array<ArrayBuffer> {
        if (innerDigests.length === 0) innerDigests = digestsOf(inner);
        return new Uint8Array(this.buffer, this.byteOffset, this.byteLength).subarray(begin, end);
      }
    }
    const sneaky = new Sneaky(40_000).fill(9);
    const outer = [randomBytes(40_000), sneaky, randomBytes(17)];
    expect(digestsOf(outer)).toEqual(outer.map(openssl));
    expect(innerDigests).toEqual(inner.map(openssl));
  });

  it('falls back to OpenSSL where Node has no WebAssembly (node --jitless)', () => {
    const module = resolve(import.meta.dirname, '../src/md5-lanes.ts');
    const script = `
      import { md5Each } from ${JSON.stringify(module)};
      const messages = [Buffer.from('abc'), Buffer.alloc(100_000, 7), Buffer.from('')];
      const digests = messages.map(() => new Uint8Array(16));
      md5Each(messages, digests);
      console.log(JSON.stringify({ wasm: typeof WebAssembly, digests: digests.map((d) => Buffer.from(d).toString('hex')) }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
    expect(out.wasm).toBe('undefined');
    expect(out.digests).toEqual([Buffer.from('abc'), Buffer.alloc(100_000, 7), Buffer.from('')].map(openssl));
  });
});

describe("writeAggregateDigests: the trailer of the producer's aggregates", () => {
  it('writes each trailer so that a consumer checking MD5 reads every record back', () => {
    const keys = new Map<string, PartitionKeyEntry>();
    const record = (key: string, data: string): AggregatableRecord => {
      let entry = keys.get(key);
      if (entry === undefined) {
        entry = {
          key,
          bytes: key.length,
          index: 0,
          aggregate: 0,
          stampedBy: undefined,
          utf8: undefined,
          writes: 0,
        };
        keys.set(key, entry);
      }
      return { partitionKeyEntry: entry, data, dataBytes: data.length, explicitHashKey: undefined };
    };
    const builder = new AggregateBuilder<AggregatableRecord>(51_200, 1_000_000, () => '0');
    const aggregates: Uint8Array[] = [];
    const expected: string[][] = [];
    for (let a = 0; a < 9; a++) {
      const sent: string[] = [];
      for (let r = 0; r < 3 + a * 40; r++) {
        expect(builder.tryAdd(record(`key-${r % 7}`, `aggregate ${a} record ${r}`))).toBe(true);
        sent.push(`key-${r % 7}=aggregate ${a} record ${r}`);
      }
      aggregates.push(builder.build().data);
      expected.push(sent);
    }
    writeAggregateDigests(aggregates);
    for (let a = 0; a < aggregates.length; a++) {
      const back = deaggregate({ data: aggregates[a]!, partitionKey: 'a' }, { onCorrupt: 'throw' });
      expect(back.map((u) => `${u.partitionKey}=${Buffer.from(u.data).toString()}`)).toEqual(expected[a]);
    }
  });
});
