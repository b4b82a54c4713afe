import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KinesisProducerOptions, ResolvedOptions } from './options.js';
import { ThreadPoolSha256 } from './payload-hash.js';

/** The longest a try waits for a connection, when `requestTimeoutMs` is longer. */
const CONNECTION_TIMEOUT_MS = 10_000;

/**
 * The client the producer creates when none is given: HTTP/1.1 with keep-alive and `maxConnections`
 * sockets (plain-HTTP endpoints need HTTP/1.1; for HTTPS it also keeps connections warm instead of one
 * HTTP/2 session per request), the SDK's retries off — the producer retries per record itself — and
 * request bodies hashed for signing on libuv's thread pool.
 */
export function createClient(options: KinesisProducerOptions, resolved: ResolvedOptions): KinesisClient {
  const agentOptions = { keepAlive: true, maxSockets: resolved.maxConnections };
  return new KinesisClient({
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    maxAttempts: 1,
    // Request bodies are hashed for signing off the main thread (see ThreadPoolSha256).
    sha256: ThreadPoolSha256,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      // The producer's own `requestTimeoutMs` ends every try, connecting included. Only a longer one
      // gets the SDK's `connectionTimeout`, so that connecting still gives up after 10 s. Under 2 s
      // the SDK's timer outlives a refused connection, and kept Node running after close().
      ...(resolved.requestTimeoutMs > CONNECTION_TIMEOUT_MS
        ? { connectionTimeout: CONNECTION_TIMEOUT_MS }
        : {}),
    }),
  });
}
