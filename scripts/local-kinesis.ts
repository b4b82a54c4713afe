/**
 * Starts and stops `kinesis-local` (the Kinesis API server LocalStack runs) on free loopback ports, for
 * the tests, the demo and the benchmark. Not part of the published package.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  type KinesisClientConfig,
  type _Record as KinesisRecord,
  ListShardsCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';

const here = dirname(fileURLToPath(import.meta.url));
const watchdog = join(here, 'parent-watchdog.cjs');

/** A running kinesis-local server. */
export interface LocalKinesis {
  /** Plain-HTTP endpoint, e.g. http://127.0.0.1:40123 */
  readonly endpoint: string;
  /** HTTPS endpoint, with kinesis-local's self-signed certificate (which Node does not trust). */
  readonly tlsEndpoint: string;
  /** Stops the server and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

/** Dummy credentials: kinesis-local accepts any signature. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
export const LOCAL_REGION = 'us-east-1';

/** Asks the OS for a free loopback port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts kinesis-local on free loopback ports and resolves once it answers API calls.
 * The child is started with a watchdog that exits it if this process dies without stopping it.
 */
export async function startLocalKinesis(
  options: { env?: Record<string, string> } = {},
): Promise<LocalKinesis> {
  const require = createRequire(import.meta.url);
  const packageDir = dirname(require.resolve('kinesis-local/package.json'));
  for (let attempt = 1; ; attempt++) {
    const plainPort = await freePort();
    const tlsPort = await freePort();
    const child = spawn(process.execPath, ['-r', watchdog, join(packageDir, 'main.js')], {
      cwd: packageDir,
      env: {
        ...process.env,
        KINESIS_MOCK_PLAIN_PORT: String(plainPort),
        KINESIS_MOCK_TLS_PORT: String(tlsPort),
        LOG_LEVEL: 'ERROR',
        ROOT_LOG_LEVEL: 'ERROR',
        SHARD_LIMIT: '100000',
        ON_DEMAND_STREAM_COUNT_LIMIT: '1000',
        CREATE_STREAM_DURATION: '50ms',
        DELETE_STREAM_DURATION: '50ms',
        UPDATE_SHARD_COUNT_DURATION: '300ms',
        SHOULD_PERSIST_DATA: 'false',
        LOAD_DATA_IF_EXISTS: 'false',
        ...options.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const stop = stopper(child);
    const exitOnFailure = () => void stop();
    process.once('exit', exitOnFailure);
    const started = Date.now();
    while (Date.now() - started < 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      if ((await canConnect(plainPort)) && (await canConnect(tlsPort))) {
        const endpoint = `http://127.0.0.1:${plainPort}`;
        return {
          endpoint,
          tlsEndpoint: `https://127.0.0.1:${tlsPort}`,
          stop: async () => {
            process.removeListener('exit', exitOnFailure);
            await stop();
          },
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop();
    process.removeListener('exit', exitOnFailure);
    if (attempt >= 3) throw new Error(`kinesis-local did not start on port ${plainPort}: ${stderr}`);
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () => {
    stopped ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    })();
    return stopped;
  };
}

/** A KinesisClient for a local plain-HTTP endpoint (HTTP/1.1, keep-alive). */
export function localClient(endpoint: string, config: Partial<KinesisClientConfig> = {}): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 30_000 }),
    ...config,
  });
}

/** Creates a stream and waits until it is ACTIVE; returns its open shards. */
export async function createStream(
  client: KinesisClient,
  streamName: string,
  shardCount: number,
): Promise<Shard[]> {
  await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shardCount }));
  await waitForActive(client, streamName);
  return await listOpenShards(client, streamName);
}

/** Polls DescribeStreamSummary until the stream is ACTIVE. */
export async function waitForActive(
  client: KinesisClient,
  streamName: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    if (Date.now() > deadline) throw new Error(`stream ${streamName} did not become ACTIVE`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every shard of a stream, open and closed, following pagination. */
export async function listAllShards(client: KinesisClient, streamName: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(
      nextToken === undefined
        ? new ListShardsCommand({ StreamName: streamName })
        : new ListShardsCommand({ NextToken: nextToken }),
    );
    shards.push(...(page.Shards ?? []));
    nextToken = page.NextToken;
  } while (nextToken !== undefined);
  return shards;
}

/** The shards that are still open (no ending sequence number). */
export async function listOpenShards(client: KinesisClient, streamName: string): Promise<Shard[]> {
  return (await listAllShards(client, streamName)).filter(
    (s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined,
  );
}

/** One shard's records, as GetRecords returned them, in order. */
export interface ShardContents {
  readonly shard: Shard;
  readonly records: KinesisRecord[];
}

/**
 * Reads every shard of a stream (open and closed) from TRIM_HORIZON to its end, as a consumer would.
 * Stops on an open shard once GetRecords returns nothing and reports it is not behind.
 */
export async function readStream(client: KinesisClient, streamName: string): Promise<ShardContents[]> {
  const shards = await listAllShards(client, streamName);
  return await Promise.all(
    shards.map(async (shard) => {
      const records: KinesisRecord[] = [];
      const it = await client.send(
        new GetShardIteratorCommand({
          StreamName: streamName,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      let iterator = it.ShardIterator;
      while (iterator !== undefined) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
        const got = page.Records ?? [];
        records.push(...got);
        iterator = page.NextShardIterator;
        if (got.length === 0 && (page.MillisBehindLatest ?? 0) === 0) break;
      }
      return { shard, records };
    }),
  );
}
