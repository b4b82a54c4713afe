import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aggregateAll, deaggregate, partitionKeyHash, RecordAggregator } from '../src/index.js';

/**
 * Kinesis records written by the real KPL (captured in awslabs/kinesis-aggregation's tests), with the
 * user records inside them. Our codec must read them, and write them again byte for byte.
 */
interface GoldenRecord {
  partitionKey: string;
  sequenceNumber: string;
  data: string;
  expectedUserRecords: { partitionKey: string; explicitHashKey: string | null; data: string }[];
}
const golden: { records: Record<string, GoldenRecord> } = JSON.parse(
  readFileSync(new URL('./fixtures/kpl-golden.json', import.meta.url), 'utf8'),
);
const cases = Object.entries(golden.records);

describe('KPL golden records', () => {
  it('has the four captured records', () => {
    expect(cases.map(([name]) => name)).toEqual([
      'kpl_with_ehks',
      'kpl_no_ehks',
      'kpl_kinesis_analytics',
      'kpl_single_not_aggregated',
    ]);
  });

  it.each(cases)('%s deaggregates to exactly the user records KPL put in', (_name, record) => {
    const users = deaggregate({
      Data: Buffer.from(record.data, 'base64'),
      PartitionKey: record.partitionKey,
      SequenceNumber: record.sequenceNumber,
    });
    expect(
      users.map((u) => ({
        partitionKey: u.partitionKey,
        explicitHashKey: u.explicitHashKey ?? null,
        data: Buffer.from(u.data).toString('utf8'),
      })),
    ).toEqual(record.expectedUserRecords);
    expect(users.map((u) => u.subSequenceNumber)).toEqual(record.expectedUserRecords.map((_, i) => i));
    expect(users.every((u) => u.sequenceNumber === record.sequenceNumber)).toBe(true);
    expect(users.every((u) => u.aggregated === record.expectedUserRecords.length > 1)).toBe(true);
  });

  it.each(cases)('%s is reproduced byte for byte by RecordAggregator', (_name, record) => {
    const aggregator = new RecordAggregator({ maxBytes: 1024 * 1024 });
    for (const user of record.expectedUserRecords) {
      const added = aggregator.add({
        partitionKey: user.partitionKey,
        data: user.data,
        ...(user.explicitHashKey === null ? {} : { explicitHashKey: user.explicitHashKey }),
      });
      expect(added).toBe(true);
    }
    const expectedBytes = Buffer.from(record.data, 'base64');
    expect(aggregator.sizeBytes).toBe(record.partitionKey.length + expectedBytes.length);
    const built = aggregator.build();
    expect(Buffer.from(built.data).toString('hex')).toBe(expectedBytes.toString('hex'));
    expect(built.partitionKey).toBe(record.partitionKey);
    const first = record.expectedUserRecords[0]!;
    expect(built.explicitHashKey).toBe(
      first.explicitHashKey ?? partitionKeyHash(first.partitionKey).toString(),
    );
    expect(aggregator.count).toBe(0);
  });

  it.each(cases)('%s is reproduced byte for byte by aggregateAll', (_name, record) => {
    const users = record.expectedUserRecords.map((user) => ({
      partitionKey: user.partitionKey,
      data: user.data,
      ...(user.explicitHashKey === null ? {} : { explicitHashKey: user.explicitHashKey }),
    }));
    const built = aggregateAll(users, { maxBytes: 1024 * 1024 });
    expect(built.map((r) => [r.partitionKey, Buffer.from(r.data).toString('base64')])).toEqual([
      [record.partitionKey, record.data],
    ]);
  });
});
