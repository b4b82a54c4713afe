/**
 * The front's connection to the real Kinesis API server behind it (kinesis-local): plain HTTP/1.1 over
 * a keep-alive agent, bodies passed through as bytes. No SDK here: the front forwards the client's
 * JSON, and its own calls (ListShards) are small enough to write by hand.
 */
import { Agent, type IncomingHttpHeaders, type OutgoingHttpHeaders, request } from 'node:http';
import { JSON_CONTENT_TYPE, parseObject } from './wire.js';

/** An upstream answer, read whole. */
export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Upstream answered one of the front's own calls with an error; the front relays it to its client. */
export class UpstreamRefusal extends Error {
  readonly response: UpstreamResponse;

  constructor(operation: string, response: UpstreamResponse) {
    super(`upstream refused ${operation} with HTTP ${response.status}: ${response.body.toString('utf8')}`);
    this.name = 'UpstreamRefusal';
    this.response = response;
  }
}

export class Upstream {
  readonly #endpoint: URL;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #signal: AbortSignal;

  /** `signal` aborts every request in flight, and every later one, when the front closes. */
  constructor(endpoint: string, signal: AbortSignal) {
    this.#endpoint = new URL(endpoint);
    this.#signal = signal;
  }

  /** Sends a request upstream and reads the whole answer, whatever its status. */
  async send(headers: OutgoingHttpHeaders, body: Buffer): Promise<UpstreamResponse> {
    return await new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: this.#endpoint.hostname,
          port: this.#endpoint.port,
          method: 'POST',
          path: '/',
          headers: { ...headers, 'content-length': body.length },
          agent: this.#agent,
          signal: this.#signal,
        },
        (incoming) => {
          const chunks: Buffer[] = [];
          incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
          incoming.on('error', reject);
          incoming.on('end', () =>
            resolve({
              status: incoming.statusCode ?? 0,
              headers: incoming.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  /**
   * Calls an operation for the front itself, with the identity headers of the client it acts for.
   * @throws {UpstreamRefusal} when upstream answers with an error.
   */
  async call(
    operation: string,
    input: Readonly<Record<string, unknown>>,
    identity: OutgoingHttpHeaders,
  ): Promise<Record<string, unknown>> {
    const response = await this.send(
      { ...identity, 'content-type': JSON_CONTENT_TYPE, 'x-amz-target': `Kinesis_20131202.${operation}` },
      Buffer.from(JSON.stringify(input)),
    );
    const output = response.status === 200 ? parseObject(response.body) : undefined;
    if (output === undefined) throw new UpstreamRefusal(operation, response);
    return output;
  }

  /** Closes the idle keep-alive connections; requests in flight are ended by the abort signal. */
  close(): void {
    this.#agent.destroy();
  }
}
