import { randomBytes } from 'node:crypto';
import type { KinesisClient, Shard } from '@aws-sdk/client-kinesis';
import { inject } from 'vitest';
import { createStream, localClient } from '../../scripts/local-kinesis.js';

let counter = 0;

/** A client for the suite's kinesis-local. */
export function testClient(): KinesisClient {
  return localClient(inject('kinesisEndpoint'));
}

/** A fresh, uniquely named, ACTIVE stream on the suite's kinesis-local. */
export async function testStream(
  client: KinesisClient,
  shardCount = 1,
  label = 'test',
): Promise<{ streamName: string; shards: Shard[] }> {
  const streamName = `${label}-${process.pid}-${++counter}-${randomBytes(4).toString('hex')}`;
  const shards = await createStream(client, streamName, shardCount);
  return { streamName, shards };
}
