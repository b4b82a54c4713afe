/**
 * `npm run demo`: the producer end to end. Writes a few thousand records in both modes — awaiting
 * each record, and fire-and-forget with callbacks — then reads every shard back with GetRecords,
 * deaggregates each record filtered by its shard's hash-key range as KCL does, and checks that every
 * record came back exactly once, where the producer said it was stored.
 *
 * Without KINESIS_ENDPOINT it starts a local Kinesis (kinesis-local) on a free port and stops it after.
 */
import { randomUUID } from 'node:crypto';
import { deaggregate, KinesisProducer, type PutResult } from '../src/index.js';
import {
  createStream,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  localClient,
  readStream,
  startLocalKinesis,
} from './local-kinesis.js';

const SHARDS = 4;
const PER_MODE = 3000;
const KEYS = 500;

const given = process.env.KINESIS_ENDPOINT;
const server = given === undefined ? await startLocalKinesis() : undefined;
const endpoint = given ?? server!.endpoint;
const client = localClient(endpoint);
const streamName = `demo-${randomUUID().slice(0, 8)}`;

try {
  console.log(`Kinesis: ${endpoint}${server ? ' (kinesis-local, started for this demo)' : ''}`);
  await createStream(client, streamName, SHARDS);
  console.log(`Stream ${streamName}: ${SHARDS} shards\n`);

  const producer = new KinesisProducer({
    streamName,
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  const sent = new Map<string, { partitionKey: string; result?: PutResult }>();
  const event = (mode: string, i: number) => ({
    partitionKey: `user-${(i * 31) % KEYS}`,
    data: JSON.stringify({ mode, i, page: `/products/${i % 97}`, at: 1_700_000_000_000 + i }),
  });

  // 1. Await each record.
  let started = performance.now();
  const awaited = await Promise.all(
    Array.from({ length: PER_MODE }, async (_, i) => {
      const record = event('await', i);
      const result = await producer.put(record);
      sent.set(record.data, { partitionKey: record.partitionKey, result });
      return result;
    }),
  );
  report('await put()', awaited, performance.now() - started);

  // 2. Fire and forget, with a callback per record.
  started = performance.now();
  const callbacks: PutResult[] = [];
  let failures = 0;
  for (let i = 0; i < PER_MODE; i++) {
    const record = event('send', i);
    sent.set(record.data, { partitionKey: record.partitionKey });
    producer.send(record, (error, result) => {
      if (error) failures++;
      else {
        callbacks.push(result!);
        sent.get(record.data)!.result = result!;
      }
    });
  }
  await producer.flush();
  report('send() + callback', callbacks, performance.now() - started);
  await producer.close();

  // 3. Read every shard back as a KCL consumer would.
  let kinesisRecords = 0;
  let received = 0;
  let wrongPlace = 0;
  const seen = new Set<string>();
  let duplicates = 0;
  for (const { shard, records } of await readStream(client, streamName)) {
    kinesisRecords += records.length;
    for (const record of records) {
      for (const user of deaggregate(record, { hashKeyRange: shard.HashKeyRange! })) {
        received++;
        const data = Buffer.from(user.data).toString();
        if (seen.has(data)) duplicates++;
        seen.add(data);
        const expected = sent.get(data)?.result;
        if (
          expected === undefined ||
          expected.shardId !== shard.ShardId ||
          expected.sequenceNumber !== user.sequenceNumber ||
          expected.subSequenceNumber !== user.subSequenceNumber
        ) {
          wrongPlace++;
        }
      }
    }
  }
  const missing = [...sent.keys()].filter((d) => !seen.has(d)).length;
  console.log(`\nRead back: ${received} user records in ${kinesisRecords} Kinesis records`);
  console.log(
    `  missing: ${missing}, duplicates: ${duplicates}, not where put() said: ${wrongPlace}, failed: ${failures}`,
  );
  if (missing + duplicates + wrongPlace + failures > 0 || received !== sent.size) {
    console.error('\nDemo FAILED');
    process.exitCode = 1;
  } else {
    console.log(
      `\nDemo OK: all ${sent.size} records came back exactly once, where the producer said they were stored.`,
    );
  }
} finally {
  client.destroy();
  await server?.stop();
}

function report(mode: string, results: PutResult[], ms: number): void {
  const shards = new Map<string, number>();
  for (const r of results) shards.set(r.shardId, (shards.get(r.shardId) ?? 0) + 1);
  const kinesisRecords = new Set(results.map((r) => `${r.shardId}/${r.sequenceNumber}`)).size;
  const attempts = results.reduce((n, r) => n + r.attempts.length, 0);
  console.log(
    `${mode.padEnd(18)} ${results.length} records -> ${kinesisRecords} Kinesis records in ${ms.toFixed(0)} ms, ${attempts} attempts; per shard: ${[...shards.values()].join(' / ')}`,
  );
}
