/** The AWS SDK side of the network benchmarks: one way to build the client, one way to send. */
import { Agent } from 'node:http';
import { KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { withNativeBody } from '../src/put-records-body.js';

/** The stream every benchmark writes to; the null sink accepts any name. */
export const BENCH_STREAM = 'bench';

/**
 * A KinesisClient for the null sink: HTTP/1.1 keep-alive (the SDK's default HTTP/2 would not talk to
 * a plain-HTTP server), enough sockets for every request in flight, dummy credentials, and no retries:
 * a retried request would be work the benchmark does not count, so any failure must fail the run.
 */
export function benchClient(endpoint: string, maxSockets: number): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new Agent({ keepAlive: true, maxSockets }),
      connectionTimeout: 5000,
      requestTimeout: 30_000,
    }),
  });
}

/**
 * Sends one PutRecords request and throws unless every entry was accepted. With `nativeBody`, the
 * records are written into the request as KinesisProducer writes them (see withNativeBody), not by the
 * SDK's serializer.
 */
export async function putRecords(
  client: KinesisClient,
  entries: PutRecordsRequestEntry[],
  nativeBody = false,
): Promise<void> {
  const command = new PutRecordsCommand({ StreamName: BENCH_STREAM, Records: entries });
  if (nativeBody) withNativeBody(command);
  const output = await client.send(command);
  if (output.FailedRecordCount !== 0 || output.Records?.length !== entries.length) {
    throw new Error(
      `PutRecords of ${entries.length} records: ${output.FailedRecordCount} failed, ${output.Records?.length} results`,
    );
  }
}
