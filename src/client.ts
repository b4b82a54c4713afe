import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';

/** The longest a try waits for a connection, when `requestTimeoutMs` is longer. */
const CONNECTION_TIMEOUT_MS = 10_000;

/**
 * The client the producer creates when none is given: HTTP/1.1 with keep-alive and `maxConnections`
 * sockets (plain-HTTP endpoints need HTTP/1.1; for HTTPS it also keeps connections warm instead of one
 * HTTP/2 session per request), and the SDK's retries off — the producer retries per record itself.
 */
export function createClient(resolved: ResolvedOptions): KinesisClient {
  const agentOptions = { keepAlive: true, maxSockets: resolved.maxConnections };
  return new KinesisClient({
    ...(resolved.region === undefined ? {} : { region: resolved.region }),
    ...(resolved.endpoint === undefined ? {} : { endpoint: resolved.endpoint }),
    ...(resolved.credentials === undefined ? {} : { credentials: resolved.credentials }),
    maxAttempts: 1,
    // The SDK hashes each request body for signing (SHA-256; a full request is 6.7 MB of base64)
    // on the main thread. Hashing it on libuv's pool (WebCrypto's digest) or on a worker thread was
    // measured against the null sink on 2 cores, and not kept. Always: fire and forget at 1 KiB
    // gained 7% records/s, but awaited puts at 10 KiB lost 15-20%, with a third more CPU per record
    // (their requests go one after another, each caller waiting for the last). Only while another
    // request was in flight: awaited puts as before, 1 KiB +12%, 10 KiB no change, 100 B -5%.
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

/**
 * Warns, in the background, when a client of the caller's would speak HTTP/2 (the SDK's default for
 * Kinesis) to a plain-HTTP endpoint of its own, as a local Kinesis is: such requests fail
 * (`ERR_HTTP2_ERROR`) or are refused, some of them only under load. Only an endpoint set on the client
 * is seen (not one from AWS_ENDPOINT_URL_KINESIS, which the SDK resolves per request).
 */
export function warnIfHttp2ToPlainHttp(client: KinesisClient, logger: Logger): void {
  const config = (client as { config?: { requestHandler?: unknown; endpoint?: unknown } }).config;
  // Not by class: the caller's client may have been built with another copy of
  // @smithy/node-http-handler. By the protocol its handler declares (a minifying bundler renames
  // classes), or by its class's name for a handler that declares none.
  const handler = config?.requestHandler as
    | { metadata?: { handlerProtocol?: unknown }; constructor?: { name?: unknown } }
    | undefined;
  const h2 = handler?.metadata?.handlerProtocol === 'h2' || handler?.constructor?.name === 'NodeHttp2Handler';
  if (!h2) return;
  const endpoint = config?.endpoint;
  if (typeof endpoint !== 'function') return;
  Promise.resolve()
    .then(() => endpoint() as unknown)
    .then(
      (resolved) => {
        const { protocol, hostname, port } = (resolved ?? {}) as {
          protocol?: unknown;
          hostname?: unknown;
          port?: unknown;
        };
        if (protocol !== 'http:') return;
        const url = `http://${String(hostname)}${port === undefined ? '' : `:${String(port)}`}`;
        logger.warn(
          { endpoint: url },
          `the client passed to the producer speaks HTTP/2 (the SDK's default for Kinesis) to the plain-HTTP endpoint ${url}: its requests will fail (ERR_HTTP2_ERROR) or be refused. Create it with \`requestHandler: new NodeHttpHandler()\` (from @smithy/node-http-handler), or pass \`endpoint\` to the producer instead of a client.`,
        );
      },
      () => {
        // An endpoint the SDK cannot resolve fails every request, with its own error.
      },
    );
}
