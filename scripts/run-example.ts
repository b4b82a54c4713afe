/**
 * `npm run example -- <name>`: runs examples/<name>.ts against a local Kinesis started for it (or the
 * endpoint in KINESIS_ENDPOINT), with a fresh stream, then stops the server.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createStream,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  localClient,
  startLocalKinesis,
} from './local-kinesis.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
const file = name === undefined ? '' : join(root, 'examples', `${name.replace(/\.ts$/, '')}.ts`);
if (!existsSync(file)) {
  console.error(
    `usage: npm run example -- <name>, one of: await-per-record, fire-and-forget, graceful-shutdown`,
  );
  process.exit(2);
}
if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('The examples import the built package: run `npm run build` first.');
  process.exit(2);
}

const server = process.env.KINESIS_ENDPOINT === undefined ? await startLocalKinesis() : undefined;
const endpoint = process.env.KINESIS_ENDPOINT ?? server!.endpoint;
const client = localClient(endpoint);
const streamName = `example-${randomUUID().slice(0, 8)}`;
try {
  await createStream(client, streamName, 2);
  const run = spawnSync(process.execPath, ['--import', 'tsx', file, ...process.argv.slice(3)], {
    stdio: 'inherit',
    env: {
      ...process.env,
      KINESIS_ENDPOINT: endpoint,
      STREAM_NAME: streamName,
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    },
  });
  process.exitCode = run.status ?? 1;
} finally {
  client.destroy();
  await server?.stop();
}
