import { createHash } from 'node:crypto';
import vm from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  aggregateAll,
  deaggregate,
  InvalidRecordError,
  KinesisProducerError,
  MAX_HASH_KEY,
  parseExplicitHashKey,
  partitionKeyHash,
  RecordAggregator,
} from '../src/index.js';

/** A Proxy already revoked: any use of it throws a TypeError. */
function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** Runs `add` and returns the typed error it threw. */
function errorOf(record: unknown, options = {}): InvalidRecordError {
  const aggregator = new RecordAggregator(options);
  try {
    aggregator.add(record as never);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRecordError);
    expect(error).toBeInstanceOf(KinesisProducerError);
    expect(aggregator.count).toBe(0);
    return error as InvalidRecordError;
  }
  throw new Error('expected add() to throw');
}

describe('bad user records get a typed error naming the field and the limit', () => {
  it.each([
    [
      'an empty partition key',
      { partitionKey: '', data: 'x' },
      'partitionKey',
      'partitionKey must be 1..256 characters long; received 0 characters.',
    ],
    [
      'a 257-character partition key',
      { partitionKey: 'k'.repeat(257), data: 'x' },
      'partitionKey',
      'partitionKey must be 1..256 characters long; received 257 characters.',
    ],
    [
      'a partition key that is not a string',
      { partitionKey: 42, data: 'x' },
      'partitionKey',
      'partitionKey must be a string of 1..256 characters; received number 42.',
    ],
    [
      'a partition key with a lone surrogate',
      { partitionKey: 'a\ud800b', data: 'x' },
      'partitionKey',
      /well-formed Unicode/,
    ],
    [
      'data of the wrong type',
      { partitionKey: 'k', data: 12 },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received number 12.',
    ],
    [
      'missing data',
      { partitionKey: 'k' },
      'data',
      /data must be a Uint8Array \(or Buffer\) or a string; received undefined/,
    ],
    [
      'data over the limit',
      { partitionKey: 'k', data: Buffer.alloc(1024 * 1024) },
      'data',
      "partitionKey + data is 1048577 bytes, above the stream's maximum record size of 1048576 bytes.",
    ],
    [
      'a negative explicit hash key',
      { partitionKey: 'k', data: 'x', explicitHashKey: '-1' },
      'explicitHashKey',
      'explicitHashKey is negative: it must be a decimal string in [0, 2^128-1]; received "-1".',
    ],
    [
      'a non-decimal explicit hash key',
      { partitionKey: 'k', data: 'x', explicitHashKey: '0x10' },
      'explicitHashKey',
      /is not a plain decimal integer: it must be a decimal string in \[0, 2\^128-1\]/,
    ],
    [
      'an explicit hash key with spaces',
      { partitionKey: 'k', data: 'x', explicitHashKey: ' 1' },
      'explicitHashKey',
      /not a plain decimal integer/,
    ],
    [
      'an empty explicit hash key',
      { partitionKey: 'k', data: 'x', explicitHashKey: '' },
      'explicitHashKey',
      /not a plain decimal integer/,
    ],
    [
      'an explicit hash key above 2^128-1',
      { partitionKey: 'k', data: 'x', explicitHashKey: (MAX_HASH_KEY + 1n).toString() },
      'explicitHashKey',
      /explicitHashKey is above the maximum hash key 2\^128-1 \(340282366920938463463374607431768211455\)/,
    ],
    [
      'an explicit hash key that is a number',
      { partitionKey: 'k', data: 'x', explicitHashKey: 5 },
      'explicitHashKey',
      'explicitHashKey must be a decimal string in [0, 2^128-1]; received number 5.',
    ],
    [
      'a record that is not an object',
      'just a string',
      'record',
      /A record must be an object \{ partitionKey, data, explicitHashKey\? \}; received "just a string"/,
    ],
    ['null', null, 'record', /received null/],
    [
      'data that only inherits from Uint8Array.prototype',
      { partitionKey: 'k', data: Object.create(Uint8Array.prototype) },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received an object (Object).',
    ],
    [
      'data that is a Proxy of a Uint8Array',
      { partitionKey: 'k', data: new Proxy(new Uint8Array(2), {}) },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received an object (Object).',
    ],
    [
      'a partition key that is a Buffer without a constructor',
      { partitionKey: Object.assign(Buffer.from('k'), { constructor: undefined }), data: 'x' },
      'partitionKey',
      'partitionKey must be a string of 1..256 characters; received a Buffer of 1 bytes.',
    ],
    [
      'data that is another typed array given Uint8Array.prototype',
      { partitionKey: 'k', data: Object.setPrototypeOf(new Uint16Array([0x0102]), Uint8Array.prototype) },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received an object (Uint16Array).',
    ],
    [
      'data that is a DataView given Uint8Array.prototype',
      {
        partitionKey: 'k',
        data: Object.setPrototypeOf(new DataView(new ArrayBuffer(4)), Uint8Array.prototype),
      },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received an object (Object).',
    ],
    [
      'data that is a revoked Proxy',
      { partitionKey: 'k', data: revokedProxy() },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received an object that cannot be shown.',
    ],
    [
      'data that is a Proxy of a Uint8Array whose getPrototypeOf trap throws',
      {
        partitionKey: 'k',
        data: new Proxy(new Uint8Array(2), {
          getPrototypeOf() {
            throw new Error('trap');
          },
        }),
      },
      'data',
      'data must be a Uint8Array (or Buffer) or a string; received an object (Object).',
    ],
    [
      'a partition key that is a Uint8Array with a revoked Proxy for prototype',
      { partitionKey: Object.setPrototypeOf(new Uint8Array(1), revokedProxy()), data: 'x' },
      'partitionKey',
      'partitionKey must be a string of 1..256 characters; received an object that cannot be shown.',
    ],
    [
      'a partition key that is a revoked Proxy',
      { partitionKey: revokedProxy(), data: 'x' },
      'partitionKey',
      'partitionKey must be a string of 1..256 characters; received an object that cannot be shown.',
    ],
  ])('%s', (_name, record, field, message) => {
    const error = errorOf(record);
    expect(error.field).toBe(field);
    expect(error.code).toBe('InvalidRecord');
    expect(error.retryable).toBe(false);
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
  });

  it('accepts the boundaries', () => {
    const aggregator = new RecordAggregator({ maxBytes: 1024 * 1024 });
    expect(aggregator.add({ partitionKey: 'k'.repeat(256), data: Buffer.alloc(1024 * 1024 - 256) })).toBe(
      true,
    );
    aggregator.reset();
    expect(aggregator.add({ partitionKey: 'k', data: '', explicitHashKey: '0' })).toBe(true);
    expect(aggregator.add({ partitionKey: 'k', data: '', explicitHashKey: MAX_HASH_KEY.toString() })).toBe(
      true,
    );
    // 256 characters counted as UTF-16 units: 128 astral characters are 256 units.
    expect(aggregator.add({ partitionKey: '😀'.repeat(128), data: '' })).toBe(true);
    expect(errorOf({ partitionKey: '😀'.repeat(129), data: '' }).field).toBe('partitionKey');
  });

  it('measures data whose length is 0 or no byte count by its bytes, and a Uint8Array of another realm', () => {
    const withLength = (length: unknown, bytes: number[]) =>
      Object.defineProperty(new Uint8Array(bytes), 'length', { value: length });
    const datas = [
      withLength(0, [1, 2, 3]),
      withLength(Number.NaN, [4]),
      withLength(-1, [5, 6]),
      withLength(undefined, [7]),
      vm.runInNewContext('new Uint8Array([8, 9])') as Uint8Array,
    ];
    const aggregator = new RecordAggregator();
    for (const data of datas) aggregator.add({ partitionKey: 'k', data });
    // What was measured is the exact size: 4-byte magic, 16-byte MD5, partition key table, entries.
    expect(aggregator.sizeBytes).toBe(aggregator.build().data.length + 1);
    const built = aggregateAll(datas.map((data) => ({ partitionKey: 'k', data })));
    const back = built.flatMap((record) => deaggregate(record)).map((user) => [...user.data]);
    expect(back).toEqual([[1, 2, 3], [4], [5, 6], [7], [8, 9]]);
  });

  it('refuses data whose length disagrees with its bytes where it is encoded, sending none of it', () => {
    class Shorter extends Uint8Array {
      override get length() {
        return 2;
      }
    }
    const records = [
      { partitionKey: 'k', data: 'first' },
      { partitionKey: 'k', data: new Shorter([4, 5, 6, 7]) },
    ];
    expect(() => aggregateAll(records)).toThrow(
      "Record 1's data is 4 bytes, not the 2 it had when added: data must not change until the aggregate is built.",
    );
  });

  it('counts a multi-byte partition key in UTF-8 bytes against the record size', () => {
    const error = errorOf(
      { partitionKey: 'é'.repeat(10), data: 'x'.repeat(81) },
      { maxRecordBytes: 100, maxBytes: 100 },
    );
    expect(error.message).toContain('partitionKey + data is 101 bytes');
  });
});

describe('hash keys', () => {
  it('hashes a partition key as MD5, big-endian, 128 bits', () => {
    // MD5("") = d41d8cd98f00b204e9800998ecf8427e
    expect(partitionKeyHash('')).toBe(0xd41d8cd98f00b204e9800998ecf8427en);
    // MD5("a") = 0cc175b9c0f1b6a831c399e269772661 (UTF-8 of the key, not UTF-16)
    expect(partitionKeyHash('a')).toBe(0x0cc175b9c0f1b6a831c399e269772661n);
    expect(partitionKeyHash('é')).toBe(
      BigInt(`0x${createHash('md5').update(Buffer.from('é', 'utf8')).digest('hex')}`),
    );
  });

  it('hashes any well-formed key as MD5 of its UTF-8 bytes would', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 256 }), (key) => {
        const md5 = createHash('md5').update(Buffer.from(key, 'utf8')).digest('hex');
        expect(partitionKeyHash(key)).toBe(BigInt(`0x${md5}`));
      }),
      { numRuns: 500 },
    );
  });

  it('hashes keys and aggregates the same on a Node without the one-shot crypto.hash (before 20.12)', async () => {
    vi.resetModules();
    vi.doMock('node:crypto', async (original) => ({ ...(await original<object>()), hash: undefined }));
    try {
      const fallback = await import('../src/hash-key.js');
      for (const key of ['a', 'é', 'user-1', '𝄞'.repeat(64)]) {
        expect(fallback.partitionKeyHash(key)).toBe(partitionKeyHash(key));
      }
      expect(fallback.partitionKeyHash('a')).toBe(0x0cc175b9c0f1b6a831c399e269772661n);
      // The aggregate trailer's MD5, of bytes (a view into a larger buffer, as an aggregate body is).
      const bytes = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
      expect(fallback.md5Hex(bytes)).toBe(
        createHash('md5')
          .update(Buffer.from([1, 2, 3]))
          .digest('hex'),
      );
    } finally {
      vi.doUnmock('node:crypto');
      vi.resetModules();
    }
  });

  it('refuses to hash a partition key that is not a string, with InvalidRecordError naming it', () => {
    for (const key of [undefined, null, 5, Buffer.from('k'), { toString: () => 'k' }]) {
      let thrown: unknown;
      try {
        partitionKeyHash(key as never);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidRecordError);
      expect(thrown).toMatchObject({ code: 'InvalidRecord', field: 'partitionKey' });
      expect((thrown as Error).message).toMatch(/^partitionKey must be a string to hash; received /);
    }
  });

  it('parses explicit hash keys, leading zeros included', () => {
    expect(parseExplicitHashKey('0')).toBe(0n);
    expect(parseExplicitHashKey('007')).toBe(7n);
    expect(parseExplicitHashKey(MAX_HASH_KEY.toString())).toBe(MAX_HASH_KEY);
    expect(() => parseExplicitHashKey('1e5')).toThrow(InvalidRecordError);
  });

  it('counts only the significant digits of a long explicit hash key', () => {
    const zeros = '0'.repeat(100);
    expect(parseExplicitHashKey(zeros)).toBe(0n);
    expect(parseExplicitHashKey(`${zeros}5`)).toBe(5n);
    expect(parseExplicitHashKey(`${zeros}${MAX_HASH_KEY}`)).toBe(MAX_HASH_KEY);
    for (const key of [`${zeros}${MAX_HASH_KEY + 1n}`, `1${'0'.repeat(39)}`, '9'.repeat(1_000_000)]) {
      expect(() => parseExplicitHashKey(key)).toThrow(/above the maximum hash key 2\^128-1/);
    }
  });
});
