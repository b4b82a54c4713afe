import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION, readStream } from '../scripts/local-kinesis.js';
import { deaggregate } from '../src/index.js';
import { testClient, testStream } from './support/streams.js';

/** The examples run as a user runs them (importing the built package) against the suite's kinesis-local. */
const root = resolve(import.meta.dirname, '..');
const client = testClient();
afterAll(() => client.destroy());

async function runExample(name: string, streamName: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', `examples/${name}.ts`], {
    cwd: root,
    env: {
      ...process.env,
      KINESIS_ENDPOINT: inject('kinesisEndpoint'),
      STREAM_NAME: streamName,
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    },
  });
  return stdout;
}

async function storedCount(streamName: string): Promise<number> {
  let n = 0;
  for (const { shard, records } of await readStream(client, streamName)) {
    for (const r of records) n += deaggregate(r, { hashKeyRange: shard.HashKeyRange! }).length;
  }
  return n;
}

describe('examples', () => {
  it('await-per-record stores every order and reports where', async () => {
    const { streamName } = await testStream(client, 2, 'example-await');
    const out = await runExample('await-per-record', streamName);
    expect(out).toContain('stored 1000 orders');
    expect(out).toMatch(/first order: shardId-\d+ seq \d+ sub \d+, 1 attempt\(s\)/);
    expect(await storedCount(streamName)).toBe(1000);
  });

  it('fire-and-forget stores every event and confirms those with a callback', async () => {
    const { streamName } = await testStream(client, 2, 'example-forget');
    const out = await runExample('fire-and-forget', streamName);
    expect(out).toContain('sent 5000 events; 500 of the 500 with a callback confirmed; outstanding: 0');
    expect(await storedCount(streamName)).toBe(5000);
  });
});
