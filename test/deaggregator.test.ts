import vm from 'node:vm';
import type { GetRecordsCommandOutput } from '@aws-sdk/client-kinesis';
import type { KinesisStreamEvent, KinesisStreamHandler } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import {
  AGGREGATED_RECORD_MAGIC,
  aggregateAll,
  CorruptAggregateError,
  type DeaggregateOptions,
  deaggregate,
  deaggregateAll,
  type HashKeyRange,
  InvalidOptionError,
  InvalidRecordError,
  MAX_HASH_KEY,
  partitionKeyHash,
  RecordAggregator,
} from '../src/index.js';
import { frame } from './support/frame.js';
import { oracleEncode } from './support/kpl-proto.js';

const text = (u: { data: Uint8Array }) => Buffer.from(u.data).toString('utf8');

function aggregateOf(records: { partitionKey: string; data: string; explicitHashKey?: string }[]) {
  const aggregator = new RecordAggregator();
  for (const r of records) aggregator.add(r);
  return aggregator.build();
}

const two = aggregateOf([
  { partitionKey: 'p1', data: 'one' },
  { partitionKey: 'p2', data: 'two', explicitHashKey: '12345' },
]);

describe('deaggregate: input shapes', () => {
  const arrival = new Date('2026-01-02T03:04:05.678Z');

  it('reads a GetRecords record from the SDK', () => {
    const users = deaggregate({
      Data: two.data,
      PartitionKey: 'a',
      SequenceNumber: '42',
      ApproximateArrivalTimestamp: arrival,
    });
    expect(users).toEqual([
      {
        partitionKey: 'p1',
        data: expect.any(Uint8Array),
        sequenceNumber: '42',
        subSequenceNumber: 0,
        aggregated: true,
        approximateArrivalTimestamp: arrival,
      },
      {
        partitionKey: 'p2',
        explicitHashKey: '12345',
        data: expect.any(Uint8Array),
        sequenceNumber: '42',
        subSequenceNumber: 1,
        aggregated: true,
        approximateArrivalTimestamp: arrival,
      },
    ]);
    expect(users.map(text)).toEqual(['one', 'two']);
  });

  it('reads a Lambda Kinesis event record (base64 data, seconds since epoch)', () => {
    const users = deaggregate({
      eventSource: 'aws:kinesis',
      kinesis: {
        kinesisSchemaVersion: '1.0',
        data: Buffer.from(two.data).toString('base64'),
        partitionKey: 'a',
        sequenceNumber: '7',
        approximateArrivalTimestamp: arrival.getTime() / 1000,
      },
    });
    expect(users.map(text)).toEqual(['one', 'two']);
    expect(users[1]).toMatchObject({ partitionKey: 'p2', sequenceNumber: '7', subSequenceNumber: 1 });
    expect(users[0]!.approximateArrivalTimestamp?.getTime()).toBe(arrival.getTime());
  });

  it('reads a plain camelCase record', () => {
    const users = deaggregate({ data: two.data, partitionKey: 'a', sequenceNumber: '9' });
    expect(users.map((u) => [u.partitionKey, text(u), u.subSequenceNumber])).toEqual([
      ['p1', 'one', 0],
      ['p2', 'two', 1],
    ]);
  });

  it('passes an ordinary record through as one user record', () => {
    const users = deaggregate({ Data: Buffer.from('plain'), PartitionKey: 'pk', SequenceNumber: '1' });
    expect(users).toEqual([
      {
        partitionKey: 'pk',
        data: Buffer.from('plain'),
        sequenceNumber: '1',
        subSequenceNumber: 0,
        aggregated: false,
      },
    ]);
  });

  it('deaggregateAll flattens many records in order', () => {
    const users = deaggregateAll([
      { Data: two.data, PartitionKey: 'a', SequenceNumber: '1' },
      { Data: Buffer.from('raw'), PartitionKey: 'r', SequenceNumber: '2' },
    ]);
    expect(users.map((u) => [u.sequenceNumber, u.subSequenceNumber, text(u)])).toEqual([
      ['1', 0, 'one'],
      ['1', 1, 'two'],
      ['2', 0, 'raw'],
    ]);
  });

  // Type-checked by `tsc --noEmit` (CI): the types Lambda and SDK users hold must be accepted as they are.
  it("takes @types/aws-lambda's event records and the SDK's optional GetRecords list as they are typed", async () => {
    const read: string[] = [];
    const handler: KinesisStreamHandler = async (event) => {
      for (const user of deaggregateAll(event.Records)) read.push(text(user));
      for (const record of event.Records) read.push(`${deaggregate(record).length} in ${record.eventID}`);
    };
    const event: KinesisStreamEvent = {
      Records: [
        {
          awsRegion: 'eu-west-1',
          eventID: 'shardId-000000000000:7',
          eventName: 'aws:kinesis:record',
          eventSource: 'aws:kinesis',
          eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/s',
          eventVersion: '1.0',
          invokeIdentityArn: 'arn:aws:iam::123456789012:role/r',
          kinesis: {
            approximateArrivalTimestamp: arrival.getTime() / 1000,
            data: Buffer.from(two.data).toString('base64'),
            kinesisSchemaVersion: '1.0',
            partitionKey: 'a',
            sequenceNumber: '7',
          },
        },
      ],
    };
    await handler(event, {} as never, () => {});
    expect(read).toEqual(['one', 'two', '2 in shardId-000000000000:7']);

    const empty: GetRecordsCommandOutput['Records'] = undefined;
    expect(deaggregateAll(empty)).toEqual([]);
  });

  it.each([
    [{ Records: [] }, 'received an object (Object) (it has `Records`: pass those).'],
    [null, 'received null.'],
    [42, 'received number 42.'],
  ])('deaggregateAll refuses %o, which is not iterable, with a typed error', (records, ending) => {
    let error: unknown;
    try {
      deaggregateAll(records as never);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(InvalidRecordError);
    expect((error as InvalidRecordError).field).toBe('records');
    expect((error as Error).message).toMatch(/^records must be an iterable of Kinesis records/);
    expect((error as Error).message.endsWith(ending)).toBe(true);
  });

  it('exports the magic as a copy: writing into it changes nothing the library reads or writes', () => {
    const magic = Uint8Array.from(AGGREGATED_RECORD_MAGIC);
    expect(Buffer.from(magic).toString('hex')).toBe('f3899ac2');
    AGGREGATED_RECORD_MAGIC.fill(0);
    try {
      const built = aggregateOf([
        { partitionKey: 'a', data: 'one' },
        { partitionKey: 'b', data: 'two' },
      ]);
      expect(Buffer.from(built.data.subarray(0, 4))).toEqual(Buffer.from(magic));
      expect(deaggregate(two).map(text)).toEqual(['one', 'two']);
    } finally {
      AGGREGATED_RECORD_MAGIC.set(magic);
    }
  });

  it('deaggregateAll refuses wrong options even when there is no record to read', () => {
    const backwards = { hashKeyRange: { startingHashKey: '5', endingHashKey: '4' } };
    for (const records of [undefined, []]) {
      expect(() => deaggregateAll(records, backwards)).toThrow(InvalidOptionError);
      expect(() => deaggregateAll(records, { onCorrupt: 'ignore' as never })).toThrow(/onCorrupt/);
      expect(() => deaggregateAll(records, null as never)).toThrow(InvalidOptionError);
    }
  });

  it('warns once about an option it does not know, naming the one meant', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const aggregate = aggregateOf([
        { partitionKey: 'a', data: 'one' },
        { partitionKey: 'b', data: 'two' },
      ]);
      const record = { Data: aggregate.data, PartitionKey: aggregate.partitionKey, SequenceNumber: '7' };
      const options = { onCorupt: 'throw' } as DeaggregateOptions;
      expect(deaggregate(record, options).map(text)).toEqual(['one', 'two']);
      expect(deaggregateAll([record], options).map(text)).toEqual(['one', 'two']);
      expect(deaggregate(record, options).map(text)).toEqual(['one', 'two']);
      expect(emitWarning.mock.calls.map(([message]) => message)).toEqual([
        'deaggregate: unknown option `onCorupt` is ignored (did you mean `onCorrupt`?)',
        'deaggregateAll: unknown option `onCorupt` is ignored (did you mean `onCorrupt`?)',
      ]);
      // Wrong options throw first, and use up no warning.
      emitWarning.mockClear();
      expect(() => deaggregate(record, { hashKeyRnage: {}, onCorrupt: 'drop' } as never)).toThrow(
        InvalidOptionError,
      );
      expect(emitWarning).not.toHaveBeenCalled();
      deaggregate(record, { hashKeyRnage: {} } as never);
      expect(emitWarning.mock.calls.map(([message]) => message)).toEqual([
        'deaggregate: unknown option `hashKeyRnage` is ignored (did you mean `hashKeyRange`?)',
      ]);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('reads data made in another realm (a vm context, a test sandbox)', () => {
    const [built] = aggregateAll([
      { partitionKey: 'a', data: 'one' },
      { partitionKey: 'b', data: 'two' },
    ]);
    const foreign = vm.runInNewContext('(bytes) => new Uint8Array(bytes)')([...built!.data]) as Uint8Array;
    expect(foreign).not.toBeInstanceOf(Uint8Array);
    const back = deaggregate({ data: foreign, partitionKey: built!.partitionKey });
    expect(back.map((user) => Buffer.from(user.data).toString())).toEqual(['one', 'two']);
  });

  it('keeps an arrival time made in another realm', () => {
    const foreign = vm.runInNewContext('new Date(1700000000000)') as Date;
    expect(foreign).not.toBeInstanceOf(Date);
    const [user] = deaggregate({
      Data: Buffer.from('x'),
      PartitionKey: 'k',
      SequenceNumber: '1',
      ApproximateArrivalTimestamp: foreign,
    });
    expect(user!.approximateArrivalTimestamp?.getTime()).toBe(1700000000000);
  });

  it("deaggregateAll given a record's data instead of the records says so, naming `records`", () => {
    for (const data of ['QUJD', Buffer.from('hi')]) {
      let error: unknown;
      try {
        deaggregateAll(data as never);
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(InvalidRecordError);
      expect(error).toMatchObject({ field: 'records' });
      expect((error as Error).message).toMatch(/looks like a record's data: pass the records\.$/);
    }
  });

  it('deaggregate given a whole event says to pass its Records', () => {
    const event = { Records: [{ kinesis: { data: 'eA==', partitionKey: 'k', sequenceNumber: '1' } }] };
    expect(() => deaggregate(event as never)).toThrow(
      /this one has `Records` \(a whole event or response\): pass each of those, or all of them to deaggregateAll\.$/,
    );
  });

  it('refuses at compile time a GetRecords-style record without Data', () => {
    // @ts-expect-error no Data: nothing to read (InvalidRecordError at run time)
    expect(() => deaggregate({})).toThrow(InvalidRecordError);
    // @ts-expect-error no Data
    expect(() => deaggregate({ PartitionKey: 'k', SequenceNumber: '1' })).toThrow(InvalidRecordError);
  });

  it('rejects shapes it does not know with a typed error', () => {
    expect(() => deaggregate({} as never)).toThrow(InvalidRecordError);
    expect(() => deaggregate(null as never)).toThrow(/expects a Kinesis record object; received null/);
    expect(() => deaggregate({ Data: 5, PartitionKey: 'a' } as never)).toThrow(
      /Data must be a Uint8Array or a base64 string; received number 5/,
    );
    expect(() => deaggregate({ Data: Buffer.from('x') } as never)).toThrow(
      /PartitionKey must be a string; received undefined/,
    );
  });

  it('rejects a string that is not base64 instead of decoding what is left of it', () => {
    // Node's decoder would skip the space and the "!" and return 7 bytes nobody sent.
    for (const data of ['hello world!', 'abc', 'ab=c', 'a===', 'user-id_1234', 'hello_world1']) {
      expect(() => deaggregate({ data, partitionKey: 'k' })).toThrow(InvalidRecordError);
    }
    expect(() =>
      deaggregate({ kinesis: { data: 'not base64', partitionKey: 'k', sequenceNumber: '1' } }),
    ).toThrow(/kinesis\.data must be a Uint8Array or a base64 string/);
    for (const bytes of [0, 1, 2, 3, 100]) {
      const data = Buffer.alloc(bytes, 0xab);
      const [user] = deaggregate({ data: data.toString('base64'), partitionKey: 'k' });
      expect(Buffer.from(user!.data).equals(data)).toBe(true);
    }
  });

  it('rejects an onCorrupt it does not know', () => {
    expect(() =>
      deaggregate({ data: Buffer.from('x'), partitionKey: 'k' }, { onCorrupt: 'Throw' as never }),
    ).toThrow("Option `onCorrupt` must be 'passthrough' or 'throw'; received \"Throw\".");
  });
});

describe('deaggregate: KCL semantics for records that are not valid aggregates', () => {
  const cases: [string, Uint8Array][] = [
    ['the magic alone', Buffer.from('f3899ac2', 'hex')],
    // An empty body with its true MD5: KCL wants at least one body byte.
    ['magic + the MD5 of an empty body', frame(Buffer.alloc(0))],
    [
      'a bad MD5',
      Buffer.concat([
        two.data.subarray(0, two.data.length - 1),
        Buffer.from([two.data[two.data.length - 1]! ^ 1]),
      ]),
    ],
    ['a body that is not protobuf', frame(Buffer.from([0xff, 0xff, 0xff]))],
    ['a truncated field', frame(Buffer.from([0x0a, 0x05, 0x61]))],
    ['a record without data', frame(oracleEncodeRaw([0x0a, 0x01, 0x61, 0x1a, 0x02, 0x08, 0x00]))],
    [
      'a record without partition_key_index',
      frame(oracleEncodeRaw([0x0a, 0x01, 0x61, 0x1a, 0x02, 0x1a, 0x00])),
    ],
    [
      'a partition key index outside the table',
      frame(
        oracleEncode({
          partition_key_table: ['a'],
          records: [{ partition_key_index: 1, data: Buffer.from('x') }],
        }),
      ),
    ],
    [
      'an explicit hash key index outside the table',
      frame(
        oracleEncode({
          partition_key_table: ['a'],
          records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('x') }],
        }),
      ),
    ],
    [
      'an explicit hash key that is not a number',
      frame(
        oracleEncode({
          partition_key_table: ['a'],
          explicit_hash_key_table: ['12x'],
          records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('x') }],
        }),
      ),
    ],
    // A field key of 8 varint bytes: its low 32 bits say field 206,616,957, wire type 3, a group
    // that never ends (read as a plain varint, the low bits are lost). protobuf-java refuses it.
    ['a field key past 2^53 naming an unterminated group', frame(Buffer.from('eb979794a6f1804615', 'hex'))],
    // Record { partition_key_index: 0, data: "x", tags: [{ value: "v" }] }: the tag lacks its key.
    [
      'a tag without its required key',
      frame(
        oracleEncodeRaw([
          0x0a, 0x01, 0x61, 0x1a, 0x0a, 0x08, 0x00, 0x1a, 0x01, 0x78, 0x22, 0x03, 0x12, 0x01, 0x76,
        ]),
      ),
    ],
  ];

  it.each(cases)('passes %s through as one user record', (_name, data) => {
    const users = deaggregate({ Data: data, PartitionKey: 'outer', SequenceNumber: '5' });
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({
      partitionKey: 'outer',
      sequenceNumber: '5',
      subSequenceNumber: 0,
      aggregated: false,
    });
    expect(Buffer.from(users[0]!.data).equals(Buffer.from(data))).toBe(true);
  });

  // Too short for an aggregate: ordinary records whose data starts with the magic.
  const tooShort = cases.slice(0, 2);
  const damaged = cases.slice(2);

  it.each(damaged)("throws CorruptAggregateError for %s with onCorrupt: 'throw'", (_name, data) => {
    expect(() =>
      deaggregate({ Data: data, PartitionKey: 'outer', SequenceNumber: '5' }, { onCorrupt: 'throw' }),
    ).toThrow(CorruptAggregateError);
  });

  it.each(tooShort)(
    "passes %s through with onCorrupt: 'throw' too: too short for an aggregate",
    (_name, data) => {
      const users = deaggregate(
        { Data: data, PartitionKey: 'outer', SequenceNumber: '5' },
        { onCorrupt: 'throw' },
      );
      expect(users.map((u) => [u.aggregated, Buffer.from(u.data).equals(Buffer.from(data))])).toEqual([
        [false, true],
      ]);
    },
  );

  it('throws for a bad MD5 whatever else is wrong with a body that reads as an aggregate holding records', () => {
    const badIndex = oracleEncode({
      partition_key_table: ['a'],
      records: [
        { partition_key_index: 0, data: Buffer.from('x') },
        { partition_key_index: 1, data: Buffer.from('y') },
      ],
    });
    const badHashKey = oracleEncode({
      partition_key_table: ['a'],
      explicit_hash_key_table: ['12x'],
      records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('y') }],
    });
    for (const body of [badIndex, badHashKey]) {
      const damaged = frame(body);
      damaged[damaged.length - 1]! ^= 1;
      expect(() =>
        deaggregate({ data: damaged, partitionKey: 'o', sequenceNumber: '1' }, { onCorrupt: 'throw' }),
      ).toThrow('Kinesis record 1 starts with the KPL magic but its MD5 trailer does not match its body.');
    }
  });

  it("passes through with onCorrupt: 'throw' a record sent alone whose data happens to start with the magic", () => {
    // One random payload in 2^32 starts with the magic (encrypted data, say). Its MD5 does not match
    // and its body does not read as an aggregate: an ordinary record, as KCL takes it.
    const payload = Buffer.concat([Buffer.from(AGGREGATED_RECORD_MAGIC), Buffer.from('ciphertext.........')]);
    const built = aggregateOf([{ partitionKey: 'user-1', data: payload.toString('latin1') }]);
    const sent = { Data: Buffer.from(payload), PartitionKey: built.partitionKey, SequenceNumber: '49' };
    for (const onCorrupt of ['passthrough', 'throw'] as const) {
      const users = deaggregate(sent, { onCorrupt });
      expect(users.map((u) => [u.partitionKey, u.aggregated, Buffer.from(u.data).equals(payload)])).toEqual([
        ['user-1', false, true],
      ]);
      expect(deaggregateAll([sent], { onCorrupt })).toEqual(users);
    }
  });

  it('reads a field key padded past 2^53 by its low 32 bits, as protobuf-java does', () => {
    // partition_key_table ["k"], then the records field with its key 0x1a written as 0x1a + 2^35.
    const body = Buffer.from(`0a016b${'9a8080808001'}05${'0800'}1a0178`, 'hex');
    const users = deaggregate({ data: frame(body), partitionKey: 'outer' });
    expect(users.map((u) => [u.partitionKey, text(u), u.aggregated])).toEqual([['k', 'x', true]]);
  });

  it.each([
    ['a partition key', '0a8180808010' + '6b' + '1a05' + '0800' + '1a0178'],
    ["a record's data", '0a016b' + '1a09' + '0800' + '1a8180808010' + '78'],
  ])('reads the length of %s padded past 2^32 by its low 32 bits, as protobuf-java does', (_name, hex) => {
    const users = deaggregate({ data: frame(Buffer.from(hex, 'hex')), partitionKey: 'outer' });
    expect(users.map((u) => [u.partitionKey, text(u), u.aggregated])).toEqual([['k', 'x', true]]);
  });

  it('names the record and the reason in the error', () => {
    const bad = cases[2]![1];
    expect(() =>
      deaggregate({ Data: bad, PartitionKey: 'a', SequenceNumber: '99' }, { onCorrupt: 'throw' }),
    ).toThrow('Kinesis record 99 starts with the KPL magic but its MD5 trailer does not match its body.');
  });

  it('deaggregateAll, which checks the trailers of a batch together, reads every record as deaggregate does', () => {
    const good = Array.from(
      { length: 6 },
      (_, i) =>
        aggregateOf([
          { partitionKey: `k${i}`, data: `first of ${i}` },
          { partitionKey: 'x', data: 'y'.repeat(i * 7000) },
        ]).data,
    );
    // A trailer off by one bit, among aggregates that are right.
    const flipped = Buffer.from(good[5]!);
    flipped[flipped.length - 1]! ^= 1;
    const batch = [
      ...good.slice(0, 3),
      ...cases.map(([, data]) => data),
      flipped,
      Buffer.from('raw'),
      good[0]!,
    ];
    const records = batch.map((data, i) => ({
      Data: data,
      PartitionKey: 'outer',
      SequenceNumber: String(i),
    }));
    const oneByOne = records.flatMap((record) => deaggregate(record));
    expect(deaggregateAll(records)).toEqual(oneByOne);
    // The corrupt ones, the flipped one and the raw one pass through; the good ones around them do not.
    const passedThrough = oneByOne.filter((u) => !u.aggregated).map((u) => Number(u.sequenceNumber));
    expect(passedThrough).toEqual(Array.from({ length: cases.length + 2 }, (_, i) => 3 + i));
    const last = oneByOne.filter((u) => u.sequenceNumber === String(batch.length - 1));
    expect(last.map(text)).toEqual(['first of 0', '']);
  });

  it("deaggregateAll: with onCorrupt 'throw', the first corrupt record fails it, unless a record of no shape comes before", () => {
    const good = { Data: two.data, PartitionKey: 'a', SequenceNumber: '1' };
    const corrupt = { Data: cases[2]![1], PartitionKey: 'a', SequenceNumber: '2' };
    const noShape = 42 as never;
    expect(() => deaggregateAll([good, corrupt, noShape], { onCorrupt: 'throw' })).toThrow(
      'Kinesis record 2 starts with the KPL magic but its MD5 trailer does not match its body.',
    );
    expect(() => deaggregateAll([good, noShape, corrupt], { onCorrupt: 'throw' })).toThrow(
      InvalidRecordError,
    );
    expect(() => deaggregateAll([good, corrupt, noShape])).toThrow(InvalidRecordError);
  });

  it('deaggregateAll reads an iterable only a little ahead of the record that fails it', () => {
    let pulled = 0;
    function* endless() {
      yield { Data: cases[2]![1], PartitionKey: 'a', SequenceNumber: '1' };
      for (;;) {
        if (++pulled > 1000) throw new Error('read the iterable far ahead');
        yield { Data: two.data, PartitionKey: 'a', SequenceNumber: String(pulled + 1) };
      }
    }
    expect(() => deaggregateAll(endless(), { onCorrupt: 'throw' })).toThrow(CorruptAggregateError);
    expect(pulled).toBeLessThan(64);
  });

  it("still passes records without the magic through with onCorrupt: 'throw'", () => {
    expect(deaggregate({ Data: Buffer.from('raw'), PartitionKey: 'k' }, { onCorrupt: 'throw' })).toHaveLength(
      1,
    );
  });

  it('skips unknown fields and tags as protobuf parsers do', () => {
    const body = oracleEncode({
      partition_key_table: ['k'],
      records: [{ partition_key_index: 0, data: Buffer.from('x'), tags: [{ key: 't', value: 'v' }] }],
    });
    // Append unknown fields of every wire type: varint (9), fixed64 (10), bytes (11), fixed32 (12), group (13).
    const unknown = Buffer.from([
      0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 0x01, 0x00, 0x65, 1, 2, 3, 4, 0x6b, 0x08, 0x01,
      0x6c,
    ]);
    const users = deaggregate({ data: frame(Buffer.concat([body, unknown])), partitionKey: 'a' });
    expect(users.map((u) => [u.partitionKey, text(u), u.aggregated])).toEqual([['k', 'x', true]]);
  });

  it('skips unknown groups nested as deep as protobuf-java allows (100 levels), and no deeper', () => {
    const body = oracleEncode({
      partition_key_table: ['k'],
      records: [{ partition_key_index: 0, data: Buffer.from('x') }],
    });
    // Field 5 as a group, `n` times inside itself.
    const groups = (n: number) => Buffer.from([...Array(n).fill(0x2b), ...Array(n).fill(0x2c)]);
    const read = (n: number) =>
      deaggregate({ data: frame(Buffer.concat([groups(n), body])), partitionKey: 'a' });
    expect(read(100).map((u) => [u.partitionKey, text(u), u.aggregated])).toEqual([['k', 'x', true]]);
    // One level more: not a valid aggregate to KCL either, so it passes through as it is.
    expect(read(101).map((u) => [u.partitionKey, u.aggregated])).toEqual([['a', false]]);
  });

  it('reads an aggregate whose explicit hash key table has an entry no record uses, as KCL does', () => {
    const data = frame(
      oracleEncode({
        partition_key_table: ['a'],
        explicit_hash_key_table: ['junk'],
        records: [
          { partition_key_index: 0, data: Buffer.from('one') },
          { partition_key_index: 0, data: Buffer.from('two') },
        ],
      }),
    );
    const users = deaggregate({ data, partitionKey: 'a' });
    expect(users.map((u) => [u.partitionKey, text(u), u.aggregated])).toEqual([
      ['a', 'one', true],
      ['a', 'two', true],
    ]);
  });

  it('returns no records for a valid aggregate that holds none, as KCL does', () => {
    expect(deaggregate({ data: frame(Buffer.from([0x0a, 0x01, 0x61])), partitionKey: 'a' })).toEqual([]);
  });
});

describe('deaggregate: shard hash-key range, as KCL filters', () => {
  const low = { partitionKey: 'x', data: 'low', explicitHashKey: '10' };
  const high = { partitionKey: 'y', data: 'high', explicitHashKey: '1000' };

  it('keeps an aggregate whose records are all inside the range', () => {
    const agg = aggregateOf([low, high]);
    const users = deaggregate(
      { data: agg.data, partitionKey: 'a' },
      { hashKeyRange: { startingHashKey: '10', endingHashKey: '1000' } },
    );
    expect(users.map(text)).toEqual(['low', 'high']);
  });

  it('drops the WHOLE aggregate when any record falls outside the range', () => {
    const agg = aggregateOf([low, high]);
    expect(
      deaggregate(
        { data: agg.data, partitionKey: 'a' },
        { hashKeyRange: { startingHashKey: 0n, endingHashKey: 999n } },
      ),
    ).toEqual([]);
    expect(
      deaggregate(
        { data: agg.data, partitionKey: 'a' },
        { hashKeyRange: { StartingHashKey: '11', EndingHashKey: '5000' } },
      ),
    ).toEqual([]);
  });

  it('uses MD5 of the partition key for records without an explicit hash key', () => {
    const hash = partitionKeyHash('user-1');
    const agg = aggregateOf([
      { partitionKey: 'user-1', data: 'a' },
      { partitionKey: 'user-1', data: 'b' },
    ]);
    const inRange = { startingHashKey: hash, endingHashKey: hash };
    expect(deaggregate({ data: agg.data, partitionKey: 'a' }, { hashKeyRange: inRange })).toHaveLength(2);
    const justAbove = { startingHashKey: hash + 1n, endingHashKey: MAX_HASH_KEY };
    expect(deaggregate({ data: agg.data, partitionKey: 'a' }, { hashKeyRange: justAbove })).toEqual([]);
  });

  it('never filters records that are not aggregates', () => {
    const users = deaggregate(
      { data: Buffer.from('raw'), partitionKey: 'k' },
      { hashKeyRange: { startingHashKey: 0n, endingHashKey: 0n } },
    );
    expect(users).toHaveLength(1);
  });

  it('drops aggregates whose explicit hash keys lie outside [0, 2^128-1] even without a range, as KCL does', () => {
    const body = oracleEncode({
      partition_key_table: ['k'],
      explicit_hash_key_table: [(MAX_HASH_KEY + 1n).toString()],
      records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('x') }],
    });
    expect(deaggregate({ data: frame(body), partitionKey: 'a' })).toEqual([]);
  });

  it('drops an aggregate whose table hash key has millions of digits without parsing them', () => {
    // BigInt's parse grows with the square of the length: 4 million digits took 650 ms.
    const parsed: number[] = [];
    const real = globalThis.BigInt;
    const spy = vi.spyOn(globalThis, 'BigInt').mockImplementation((value) => {
      if (typeof value === 'string') parsed.push(value.length);
      return real(value);
    });
    try {
      for (const sign of ['', '+', '-']) {
        const body = oracleEncode({
          partition_key_table: ['k'],
          explicit_hash_key_table: [`${sign}${'1'.repeat(4_000_000)}`],
          records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('x') }],
        });
        expect(deaggregate({ data: frame(body), partitionKey: 'a' })).toEqual([]);
      }
      // Leading zeros do not count: this is 5.
      const five = oracleEncode({
        partition_key_table: ['k'],
        explicit_hash_key_table: [`${'0'.repeat(100)}5`],
        records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('x') }],
      });
      const range = { hashKeyRange: { startingHashKey: 5n, endingHashKey: 5n } };
      expect(deaggregate({ data: frame(five), partitionKey: 'a' }, range).map(text)).toEqual(['x']);
    } finally {
      spy.mockRestore();
    }
    expect(parsed.filter((length) => length > 200)).toEqual([]);
  });

  it("reads signed hash keys in the table as Java's BigInteger does: -1 lies outside, +5 is 5", () => {
    const withHashKey = (ehk: string) =>
      frame(
        oracleEncode({
          partition_key_table: ['k'],
          explicit_hash_key_table: [ehk],
          records: [{ partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('x') }],
        }),
      );
    expect(deaggregate({ data: withHashKey('-1'), partitionKey: 'a' })).toEqual([]);
    const plus5 = withHashKey('+5');
    const inRange = deaggregate(
      { data: plus5, partitionKey: 'a' },
      { hashKeyRange: { startingHashKey: 0n, endingHashKey: 5n } },
    );
    expect(inRange.map((r) => [r.partitionKey, r.explicitHashKey, Buffer.from(r.data).toString()])).toEqual([
      ['k', '+5', 'x'],
    ]);
    const above = { hashKeyRange: { startingHashKey: 6n, endingHashKey: MAX_HASH_KEY } };
    expect(deaggregate({ data: plus5, partitionKey: 'a' }, above)).toEqual([]);
  });

  it('filters by the MD5 of every partition key of the table, each record checked', () => {
    const [inside, outside] = ['key-a', 'key-b'].sort((x, y) =>
      partitionKeyHash(x) < partitionKeyHash(y) ? -1 : 1,
    ) as [string, string];
    const range = { startingHashKey: 0n, endingHashKey: partitionKeyHash(inside) };
    const kept = aggregateOf([
      { partitionKey: inside, data: '1' },
      { partitionKey: inside, data: '2' },
    ]);
    expect(deaggregate({ data: kept.data, partitionKey: 'a' }, { hashKeyRange: range })).toHaveLength(2);
    const mixed = aggregateOf([
      { partitionKey: inside, data: '1' },
      { partitionKey: inside, data: '2' },
      { partitionKey: outside, data: '3' },
    ]);
    expect(deaggregate({ data: mixed.data, partitionKey: 'a' }, { hashKeyRange: range })).toEqual([]);
  });

  it('filters with a range of the whole hash space given explicitly as it does with none', () => {
    const whole = { StartingHashKey: '0', EndingHashKey: MAX_HASH_KEY.toString() };
    expect(deaggregate({ data: two.data, partitionKey: 'a' }, { hashKeyRange: whole })).toHaveLength(2);
    const body = oracleEncode({
      partition_key_table: ['k'],
      explicit_hash_key_table: [(MAX_HASH_KEY + 1n).toString()],
      records: [
        { partition_key_index: 0, data: Buffer.from('x') },
        { partition_key_index: 0, explicit_hash_key_index: 0, data: Buffer.from('y') },
      ],
    });
    expect(deaggregate({ data: frame(body), partitionKey: 'a' }, { hashKeyRange: whole })).toEqual([]);
  });

  it('rejects a malformed range with a typed option error', () => {
    expect(() =>
      deaggregate(
        { data: two.data, partitionKey: 'a' },
        { hashKeyRange: { startingHashKey: '-1', endingHashKey: '5' } },
      ),
    ).toThrow(InvalidOptionError);
    const refused = (hashKeyRange: HashKeyRange) => () =>
      deaggregate({ data: two.data, partitionKey: 'a' }, { hashKeyRange });
    // Outside the hash-key space, as bigints too.
    expect(refused({ startingHashKey: -5n, endingHashKey: 5n })).toThrow(
      'Option `hashKeyRange.startingHashKey` must be a hash key in [0, 2^128-1], as a decimal string or a bigint; received',
    );
    expect(refused({ startingHashKey: 0n, endingHashKey: MAX_HASH_KEY + 1n })).toThrow(
      /^Option `hashKeyRange.endingHashKey` must be a hash key in \[0, 2\^128-1\]/,
    );
    // Empty: it would drop every aggregate without a word.
    expect(refused({ startingHashKey: '5', endingHashKey: '1' })).toThrow(
      'Option `hashKeyRange.endingHashKey` must be at least startingHashKey (5); received "1".',
    );
    // The SDK's shape with its members missing; not an object at all.
    expect(refused({})).toThrow(/^Option `hashKeyRange.startingHashKey` must be a hash key/);
    expect(refused(null as never)).toThrow(
      new InvalidOptionError('hashKeyRange', 'a shard hash-key range object', null),
    );
    expect(() => deaggregate({ data: two.data, partitionKey: 'a' }, null as never)).toThrow(
      new InvalidOptionError('options', 'an object (or left out)', null),
    );
    // The whole space is a range, as are its two ends.
    const whole = { startingHashKey: 0n, endingHashKey: MAX_HASH_KEY };
    expect(deaggregate({ data: two.data, partitionKey: 'a' }, { hashKeyRange: whole })).toHaveLength(2);
  });
});

/** Raw protobuf bytes, for messages protobufjs would refuse to encode (missing required fields). */
function oracleEncodeRaw(bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}
