import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  aggregateAll,
  deaggregate,
  InvalidOptionError,
  InvalidRecordError,
  KinesisProducerError,
  type KinesisRecord,
  MAX_HASH_KEY,
  partitionKeyHash,
  RecordAggregator,
  type RecordAggregatorOptions,
  type UserRecord,
} from '../src/index.js';
import { useMd5Lanes } from '../src/md5-lanes.js';
import { frame } from './support/frame.js';
import { oracleDecode, oracleEncode } from './support/kpl-proto.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');
const body = (data: Uint8Array) => data.subarray(4, data.length - 16);

describe('RecordAggregator: the Kinesis record it builds', () => {
  it('sends one user record raw, under its own partition key and its hash key in decimal', () => {
    const aggregator = new RecordAggregator();
    aggregator.add({ partitionKey: 'user-1', data: 'hello' });
    expect(aggregator.sizeBytes).toBe('user-1'.length + 5);
    const built = aggregator.build();
    expect(built.partitionKey).toBe('user-1');
    expect(built.explicitHashKey).toBe(partitionKeyHash('user-1').toString());
    expect(Buffer.from(built.data).toString()).toBe('hello');
  });

  it('keeps a single record explicit hash key, normalised', () => {
    const aggregator = new RecordAggregator();
    aggregator.add({ partitionKey: 'k', data: 'x', explicitHashKey: '000123' });
    expect(aggregator.build().explicitHashKey).toBe('123');
  });

  it('gives an aggregate partition key "a" and the FIRST record hash key', () => {
    const aggregator = new RecordAggregator();
    aggregator.add({ partitionKey: 'second-key-first', data: 'one' });
    aggregator.add({ partitionKey: 'other', data: 'two', explicitHashKey: '5' });
    const built = aggregator.build();
    expect(built.partitionKey).toBe('a');
    expect(built.explicitHashKey).toBe(partitionKeyHash('second-key-first').toString());
    expect(Buffer.from(built.data.subarray(0, 4)).toString('hex')).toBe('f3899ac2');
  });

  it('de-duplicates key tables in first-seen order and stores explicit hash keys as normalised decimals', () => {
    const aggregator = new RecordAggregator();
    const records: UserRecord[] = [
      { partitionKey: 'b', data: '1' },
      { partitionKey: 'a', data: '2', explicitHashKey: '0042' },
      { partitionKey: 'b', data: '3', explicitHashKey: '42' },
      { partitionKey: 'c', data: '4', explicitHashKey: '7' },
      { partitionKey: 'a', data: '5' },
    ];
    for (const r of records) expect(aggregator.add(r)).toBe(true);
    const decoded = oracleDecode(body(aggregator.build().data));
    expect(decoded.partition_key_table).toEqual(['b', 'a', 'c']);
    expect(decoded.explicit_hash_key_table).toEqual(['42', '7']);
    expect(decoded.records.map((r) => [r.partition_key_index, r.explicit_hash_key_index ?? null])).toEqual([
      [0, 0],
      [1, 0],
      [0, 0],
      [2, 1],
      [1, 0],
    ]);
  });

  it('writes exactly the bytes protobuf writes for the same message, framed by magic and MD5', () => {
    const aggregator = new RecordAggregator();
    aggregator.add({ partitionKey: 'p1', data: bytes('alpha') });
    aggregator.add({ partitionKey: 'p2', data: bytes(''), explicitHashKey: '0' });
    aggregator.add({ partitionKey: 'p1', data: bytes('gamma'), explicitHashKey: MAX_HASH_KEY.toString() });
    const expected = frame(
      oracleEncode({
        partition_key_table: ['p1', 'p2'],
        explicit_hash_key_table: ['0', MAX_HASH_KEY.toString()],
        records: [
          { partition_key_index: 0, data: bytes('alpha') },
          { partition_key_index: 1, explicit_hash_key_index: 0, data: bytes('') },
          { partition_key_index: 0, explicit_hash_key_index: 1, data: bytes('gamma') },
        ],
      }),
    );
    const size = aggregator.sizeBytes;
    const built = aggregator.build();
    expect(Buffer.from(built.data).equals(expected)).toBe(true);
    expect(size).toBe(1 + expected.length);
  });

  it('encodes string data as UTF-8', () => {
    const aggregator = new RecordAggregator();
    aggregator.add({ partitionKey: 'k', data: 'héllo 🌍' });
    aggregator.add({ partitionKey: 'k', data: '' });
    const users = deaggregate({ data: aggregator.build().data, partitionKey: 'a' });
    expect(Buffer.from(users[0]!.data).toString('utf8')).toBe('héllo 🌍');
    expect(users[1]!.data.length).toBe(0);
  });
});

describe('RecordAggregator: limits', () => {
  it('refuses the record that would push an aggregate past maxBytes, and stays unchanged', () => {
    const aggregator = new RecordAggregator({ maxBytes: 200 });
    let added = 0;
    while (aggregator.add({ partitionKey: `k${added}`, data: 'x'.repeat(20) })) added++;
    const sizeBefore = aggregator.sizeBytes;
    expect(sizeBefore).toBeLessThanOrEqual(200);
    expect(aggregator.add({ partitionKey: 'late', data: 'x'.repeat(20) })).toBe(false);
    expect(aggregator.count).toBe(added);
    expect(aggregator.sizeBytes).toBe(sizeBefore);
    const built = aggregator.build();
    expect(1 + built.data.length).toBe(sizeBefore);
  });

  it('build() throws InvalidRecordError, and sends no stray bytes, when data changed length after add()', () => {
    const detach = (data: Uint8Array) =>
      structuredClone(data.buffer, { transfer: [data.buffer as ArrayBuffer] });
    for (const count of [1, 2]) {
      const aggregator = new RecordAggregator();
      if (count === 2) aggregator.add({ partitionKey: 'k', data: 'kept' });
      const data = new Uint8Array(new ArrayBuffer(16)).fill(3);
      aggregator.add({ partitionKey: 'k', data });
      detach(data);
      let thrown: unknown;
      try {
        aggregator.build();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidRecordError);
      expect(thrown).toMatchObject({ field: 'data' });
      expect(String(thrown)).toContain(`Record ${count - 1}'s data is 0 bytes, not the 16 it had when added`);
      expect(aggregator.count).toBe(count);
    }
  });

  it('fills an aggregate to exactly maxBytes when the records fit exactly', () => {
    // Two records of key "k": 1 + 4 + 2*(table "k": 3 bytes once) ... measure with a first aggregate.
    const probe = new RecordAggregator({ maxBytes: 1_000_000 });
    probe.add({ partitionKey: 'k', data: 'x'.repeat(10) });
    probe.add({ partitionKey: 'k', data: 'x'.repeat(10) });
    const exact = probe.sizeBytes;
    const aggregator = new RecordAggregator({ maxBytes: exact });
    expect(aggregator.add({ partitionKey: 'k', data: 'x'.repeat(10) })).toBe(true);
    expect(aggregator.add({ partitionKey: 'k', data: 'x'.repeat(10) })).toBe(true);
    expect(aggregator.sizeBytes).toBe(exact);
    expect(aggregator.add({ partitionKey: 'k', data: '' })).toBe(false);
  });

  it('refuses past maxCount', () => {
    const aggregator = new RecordAggregator({ maxCount: 3 });
    expect([1, 2, 3, 4].map((i) => aggregator.add({ partitionKey: 'k', data: String(i) }))).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('accepts a single record larger than maxBytes into an empty aggregator: it is sent raw', () => {
    const aggregator = new RecordAggregator({ maxBytes: 100 });
    expect(aggregator.add({ partitionKey: 'k', data: 'x'.repeat(500) })).toBe(true);
    expect(aggregator.add({ partitionKey: 'k', data: 'y' })).toBe(false);
    expect(aggregator.build().data.length).toBe(500);
  });

  it('rejects records above the stream record size with a typed error naming the limit', () => {
    const aggregator = new RecordAggregator({ maxRecordBytes: 1000, maxBytes: 1000 });
    expect(() => aggregator.add({ partitionKey: 'abc', data: 'x'.repeat(998) })).toThrow(InvalidRecordError);
    expect(() => aggregator.add({ partitionKey: 'abc', data: 'x'.repeat(998) })).toThrow(
      /partitionKey \+ data is 1001 bytes, above the stream's maximum record size of 1000 bytes/,
    );
    expect(aggregator.count).toBe(0);
    expect(aggregator.add({ partitionKey: 'abc', data: 'x'.repeat(997) })).toBe(true);
  });

  it('validates its options', () => {
    expect(() => new RecordAggregator({ maxBytes: 0 })).toThrow(InvalidOptionError);
    expect(() => new RecordAggregator({ maxBytes: 2 * 1024 * 1024 })).toThrow(
      'Option `maxBytes` must be an integer in [21, 1048576]; received number 2097152.',
    );
    expect(() => new RecordAggregator({ maxCount: 1.5 })).toThrow(/maxCount/);
    expect(() => new RecordAggregator({ maxRecordBytes: 11 * 1024 * 1024 })).toThrow(/maxRecordBytes/);
    // The option given is the one named, with a range that is not empty.
    expect(() => new RecordAggregator({ maxRecordBytes: 10 })).toThrow(
      'Option `maxRecordBytes` must be an integer in [21, 10485760]; received number 10.',
    );
  });

  it('warns once about an option it does not know, naming the one meant, and takes the rest', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const options = { maxSize: 100, maxCount: 2 } as RecordAggregatorOptions;
      const aggregator = new RecordAggregator(options);
      new RecordAggregator(options);
      new RecordAggregator({ maxBytes: 100, retries: 3 } as RecordAggregatorOptions);
      expect(emitWarning.mock.calls.map(([message]) => message)).toEqual([
        'RecordAggregator: unknown option `maxSize` is ignored (did you mean `maxBytes`?)',
        'RecordAggregator: unknown option `retries` is ignored',
      ]);
      expect(emitWarning.mock.calls[0]![1]).toMatchObject({ type: 'KinesisProducerWarning' });
      // maxSize took no effect (the default 51,200 bytes holds); maxCount did.
      expect(aggregator.add({ partitionKey: 'k', data: 'x'.repeat(200) })).toBe(true);
      expect(aggregator.add({ partitionKey: 'k', data: 'x'.repeat(200) })).toBe(true);
      expect(aggregator.add({ partitionKey: 'k', data: 'x' })).toBe(false);
      // Wrong options throw first, and use up no warning; KPL's name points to ours.
      emitWarning.mockClear();
      const kpl = { AggregationMaxCount: 2, maxBytes: 1 } as RecordAggregatorOptions;
      expect(() => new RecordAggregator(kpl)).toThrow(InvalidOptionError);
      expect(emitWarning).not.toHaveBeenCalled();
      new RecordAggregator({ AggregationMaxCount: 2 } as RecordAggregatorOptions);
      expect(emitWarning.mock.calls.map(([message]) => message)).toEqual([
        'RecordAggregator: unknown option `AggregationMaxCount` is ignored (did you mean `maxCount`?)',
      ]);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('takes null options as none, and refuses options that are no object', () => {
    expect(new RecordAggregator(null as never).add({ partitionKey: 'k', data: 'x' })).toBe(true);
    expect(() => new RecordAggregator(5 as never)).toThrow(new InvalidOptionError('options', 'an object', 5));
  });

  it('throws a KinesisProducerError with code EmptyAggregate when building an empty aggregator', () => {
    expect(() => new RecordAggregator().build()).toThrow(KinesisProducerError);
    expect(() => new RecordAggregator().build()).toThrow(
      expect.objectContaining({ code: 'EmptyAggregate', message: expect.stringMatching(/no record added/) }),
    );
  });
});

describe('RecordAggregator: partition keys across aggregates', () => {
  it('gives every aggregate its own key table, in first-seen order, when keys come back', () => {
    const aggregator = new RecordAggregator();
    for (const key of ['k1', 'k2', 'k1']) aggregator.add({ partitionKey: key, data: key });
    const first = oracleDecode(body(aggregator.build().data));
    for (const key of ['k3', 'k1', 'k1', 'k2', 'k3', 'k2']) aggregator.add({ partitionKey: key, data: key });
    const second = oracleDecode(body(aggregator.build().data));
    expect(first.partition_key_table).toEqual(['k1', 'k2']);
    expect(first.records.map((r) => r.partition_key_index)).toEqual([0, 1, 0]);
    expect(second.partition_key_table).toEqual(['k3', 'k1', 'k2']);
    expect(second.records.map((r) => r.partition_key_index)).toEqual([0, 1, 1, 2, 0, 2]);
    aggregator.add({ partitionKey: 'k2', data: 'raw' });
    expect(aggregator.sizeBytes).toBe(2 + 3);
    expect(aggregator.build().partitionKey).toBe('k2');
  });

  it('writes a key the same bytes in every aggregate it comes back to', () => {
    // From its second aggregate on, a key is copied in from bytes kept with it, no longer encoded.
    const aggregator = new RecordAggregator();
    const keys = ['k', 'ключ', '🔑', 'x'.repeat(200)];
    for (let round = 0; round < 4; round++) {
      const order = [...keys.slice(round), ...keys.slice(0, round)];
      for (const key of order) aggregator.add({ partitionKey: key, data: bytes(`${round}`) });
      const expected = frame(
        oracleEncode({
          partition_key_table: order,
          records: order.map((_, i) => ({ partition_key_index: i, data: bytes(`${round}`) })),
        }),
      );
      expect(Buffer.from(aggregator.build().data).equals(expected)).toBe(true);
    }
  });

  it('validates every record in full, whatever its partition key was seen with before', () => {
    const aggregator = new RecordAggregator({ maxRecordBytes: 100, maxBytes: 100 });
    const key = 'é'.repeat(10); // 20 bytes of UTF-8
    expect(aggregator.add({ partitionKey: key, data: 'x' })).toBe(true);
    aggregator.build();
    expect(() => aggregator.add({ partitionKey: key, data: 12 as never })).toThrow(
      /data must be a Uint8Array/,
    );
    expect(() => aggregator.add({ partitionKey: key, data: 'x'.repeat(81) })).toThrow(
      'partitionKey + data is 101 bytes',
    );
    expect(() => aggregator.add({ partitionKey: key, data: 'x', explicitHashKey: '-1' })).toThrow(
      InvalidRecordError,
    );
    expect(aggregator.add({ partitionKey: key, data: 'x'.repeat(80) })).toBe(true);
    expect(aggregator.sizeBytes).toBe(100);
  });

  it('round-trips when more distinct keys pass through it than it remembers', () => {
    // 40,000 distinct keys, then the first ones again: past any bound on remembered keys.
    const records = Array.from({ length: 44_000 }, (_, i) => ({
      partitionKey: `key-${i % 40_000}`,
      data: Buffer.from([i & 255]),
    }));
    const aggregator = new RecordAggregator({ maxBytes: 64 * 1024 });
    let next = 0;
    const check = () => {
      for (const user of deaggregate({ data: aggregator.build().data, partitionKey: 'a' })) {
        const expected = records[next++]!;
        expect(user.partitionKey).toBe(expected.partitionKey);
        expect(Buffer.from(user.data).equals(expected.data)).toBe(true);
      }
    };
    for (const record of records) {
      if (!aggregator.add(record)) {
        check();
        aggregator.add(record);
      }
    }
    check();
    expect(next).toBe(records.length);
  });
});

describe('RecordAggregator: properties', () => {
  // Partition keys: any well-formed Unicode, 1..256 UTF-16 units (what the service counts).
  const partitionKey = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 256 })
    .map((s) => {
      let out = '';
      for (const ch of s) {
        if (out.length + ch.length > 256) break;
        out += ch;
      }
      return out;
    })
    .filter((s) => s.length > 0 && s.isWellFormed());
  const hashKey = fc.oneof(
    fc.constant(undefined),
    fc.constant('0'),
    fc.constant(MAX_HASH_KEY.toString()),
    fc.bigInt({ min: 0n, max: MAX_HASH_KEY }).map((v) => v.toString()),
  );
  const data = fc.oneof(
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 20_000, maxLength: 60_000 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 100 }) },
  );
  const record = fc.record({ partitionKey, data, explicitHashKey: hashKey }).map((r) => {
    const out: { partitionKey: string; data: Uint8Array | string; explicitHashKey?: string } = {
      partitionKey: r.partitionKey,
      data: r.data,
    };
    if (r.explicitHashKey !== undefined) out.explicitHashKey = r.explicitHashKey;
    return out;
  });

  /** The user record as it should come back: hex data, normalised explicit hash key. */
  const expected = (r: UserRecord) => ({
    partitionKey: r.partitionKey,
    explicitHashKey: r.explicitHashKey === undefined ? undefined : BigInt(r.explicitHashKey).toString(),
    data: Buffer.from(typeof r.data === 'string' ? Buffer.from(r.data, 'utf8') : r.data).toString('hex'),
  });

  /** Feeds records through an aggregator, building whenever it is full, and checks every build. */
  function roundTrip(records: UserRecord[], maxBytes: number): void {
    const aggregator = new RecordAggregator({ maxBytes });
    const back: ReturnType<typeof expected>[] = [];
    const flush = () => {
      const predicted = aggregator.sizeBytes;
      const count = aggregator.count;
      const first = records[back.length]!;
      const built = aggregator.build();
      expect(Buffer.byteLength(built.partitionKey) + built.data.length).toBe(predicted);
      if (count > 1) expect(predicted).toBeLessThanOrEqual(maxBytes);
      const firstHash =
        first.explicitHashKey === undefined
          ? partitionKeyHash(first.partitionKey)
          : BigInt(first.explicitHashKey);
      expect(built.explicitHashKey).toBe(firstHash.toString());
      const users = deaggregate({ data: built.data, partitionKey: built.partitionKey });
      expect(users).toHaveLength(count);
      for (const u of users) {
        expect(u.aggregated).toBe(count > 1);
        back.push({
          partitionKey: u.partitionKey,
          // A single record travels raw: its explicit hash key is the outer record's.
          explicitHashKey:
            count > 1
              ? u.explicitHashKey
              : first.explicitHashKey === undefined
                ? undefined
                : built.explicitHashKey,
          data: Buffer.from(u.data).toString('hex'),
        });
      }
    };
    for (const r of records) {
      if (!aggregator.add(r)) {
        flush();
        expect(aggregator.add(r)).toBe(true);
      }
    }
    if (aggregator.count > 0) flush();
    expect(back).toEqual(records.map(expected));
  }

  it('round-trips losslessly and predicts its exact size, for any records', () => {
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 21, max: 200_000 }),
        (records, maxBytes) => {
          roundTrip(records, maxBytes);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('round-trips thousands of small records in one aggregate', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            partitionKey: fc.constantFrom('a', 'b', 'ключ', '鍵', '🔑'),
            data: fc.uint8Array({ maxLength: 8 }),
          }),
          {
            minLength: 2000,
            maxLength: 5000,
          },
        ),
        (records) => roundTrip(records, 1024 * 1024),
      ),
      { numRuns: 5 },
    );
  });

  it('round-trips thousands of distinct partition keys', () => {
    const records = Array.from({ length: 3000 }, (_, i) => ({
      partitionKey: `key-${i}-${'é'.repeat(i % 7)}`,
      data: Buffer.from([i & 255]),
    }));
    roundTrip(records, 51_200);
    roundTrip(records, 1024 * 1024);
  });

  it('aggregateAll gives exactly the records RecordAggregator builds one by one, for any records', () => {
    // Its trailers are written by the lanes whenever there are two aggregates or more.
    expect(useMd5Lanes(true)).toBe(true);
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 60 }),
        fc.integer({ min: 21, max: 200_000 }),
        fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
        (records, maxBytes, maxCount) => {
          const options = maxCount === undefined ? { maxBytes } : { maxBytes, maxCount };
          expect(aggregateAll(records, options).map(hex)).toEqual(oneByOne(records, options).map(hex));
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** A Kinesis record with its data in hex: quick to compare. */
const hex = (r: KinesisRecord) => ({ ...r, data: Buffer.from(r.data).toString('hex') });

/** What the RecordAggregator example does: add until full, build, go on. */
function oneByOne(records: readonly UserRecord[], options: RecordAggregatorOptions): KinesisRecord[] {
  const aggregator = new RecordAggregator(options);
  const out: KinesisRecord[] = [];
  for (const r of records) {
    if (!aggregator.add(r)) {
      out.push(aggregator.build());
      aggregator.add(r);
    }
  }
  if (aggregator.count > 0) out.push(aggregator.build());
  return out;
}

describe('aggregateAll', () => {
  it('writes every trailer right when there are many aggregates: KCL reads each with its MD5 checked', () => {
    expect(useMd5Lanes(true)).toBe(true);
    // 2,000 records of 1 to 1,999 bytes in aggregates of at most 51,200: about 40 of them, of many sizes.
    const records = Array.from({ length: 2000 }, (_, i) => ({
      partitionKey: `key-${i % 300}`,
      data: Buffer.alloc(1 + ((i * 7919) % 1999), i & 255),
    }));
    const built = aggregateAll(records);
    expect(built.length).toBeGreaterThan(30);
    const back = built.flatMap((r) => deaggregate(r, { onCorrupt: 'throw' }));
    expect(back.every((u) => u.aggregated)).toBe(true);
    expect(back.map((u) => [u.partitionKey, Buffer.from(u.data).toString('hex')])).toEqual(
      records.map((r) => [r.partitionKey, r.data.toString('hex')]),
    );
    expect(built.map(hex)).toEqual(oneByOne(records, {}).map(hex));
  });

  it('takes any iterable, and gives none for none', () => {
    function* generate() {
      yield { partitionKey: 'a', data: 'one' };
      yield { partitionKey: 'b', data: 'two' };
    }
    const [only] = aggregateAll(generate());
    expect(deaggregate(only!).map((u) => Buffer.from(u.data).toString())).toEqual(['one', 'two']);
    expect(aggregateAll([])).toEqual([]);
  });

  it('refuses the first record that can never be written, naming its place, and returns nothing', () => {
    const records: UserRecord[] = [
      { partitionKey: 'a', data: 'fine' },
      { partitionKey: 'b', data: 'fine' },
      { partitionKey: '', data: 'no key' },
      { partitionKey: 'c', data: 7 as never },
    ];
    let thrown: unknown;
    try {
      aggregateAll(records);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidRecordError);
    expect(thrown).toMatchObject({
      field: 'partitionKey',
      message: 'Record 2: partitionKey must be 1..256 characters long; received 0 characters.',
    });
  });

  it('names a record whose data changed length during the call by its place in the batch', () => {
    const buffers = Array.from({ length: 10 }, () => new Uint8Array(50).fill(1));
    function* generate() {
      for (let i = 0; i < buffers.length; i++) {
        // Before record 8 is added, record 5's buffer is handed away (detached): 0 bytes now.
        if (i === 8) structuredClone(buffers[5]!.buffer, { transfer: [buffers[5]!.buffer] });
        yield { partitionKey: `k${i}`, data: buffers[i]! };
      }
    }
    // Four records an aggregate: records 4-7 are built when record 8 does not fit.
    expect(() => aggregateAll(generate(), { maxCount: 4 })).toThrow(
      new InvalidRecordError(
        'data',
        "Record 5's data is 0 bytes, not the 50 it had when added: data must not change until the aggregate is built.",
      ),
    );
  });

  it('reads a record that starts a new aggregate once, and encodes what that read gave', () => {
    let reads = 0;
    const changing = {
      partitionKey: 'k2',
      get data() {
        reads++;
        return reads === 1 ? 'A'.repeat(100) : 42;
      },
    };
    // The first record leaves no room for the second: it goes into an aggregate of its own.
    const built = aggregateAll([{ partitionKey: 'k1', data: 'x'.repeat(180) }, changing as never], {
      maxBytes: 250,
    });
    expect(reads).toBe(1);
    expect(
      built.flatMap((record) => deaggregate(record)).map((user) => Buffer.from(user.data).toString()),
    ).toEqual(['x'.repeat(180), 'A'.repeat(100)]);
  });

  it('refuses wrong options and a source that is not iterable, as RecordAggregator does', () => {
    expect(() => aggregateAll([], { maxBytes: 5 })).toThrow(InvalidOptionError);
    expect(() => aggregateAll([], 'big' as never)).toThrow(
      new InvalidOptionError('options', 'an object', 'big'),
    );
    expect(() => aggregateAll(5 as never)).toThrow(
      new InvalidOptionError('records', 'an iterable of records', 5),
    );
    expect(() => aggregateAll(undefined as never)).toThrow(InvalidOptionError);
    // A signal is no option of a codec: an object with no options, as before.
    expect(aggregateAll([], new AbortController().signal as never)).toEqual([]);
  });

  it('warns once about an option it does not know, naming itself and the one meant', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const options = { maxSize: 100, maxCount: 1 } as RecordAggregatorOptions;
      const records = [
        { partitionKey: 'a', data: 'x' },
        { partitionKey: 'b', data: 'y' },
      ];
      // maxCount took effect: each record alone.
      expect(aggregateAll(records, options).map((r) => r.partitionKey)).toEqual(['a', 'b']);
      aggregateAll(records, options);
      expect(emitWarning.mock.calls.map(([message]) => message)).toEqual([
        'aggregateAll: unknown option `maxSize` is ignored (did you mean `maxBytes`?)',
      ]);
    } finally {
      emitWarning.mockRestore();
    }
  });
});
