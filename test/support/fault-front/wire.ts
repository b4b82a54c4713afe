/**
 * The Kinesis JSON 1.1 protocol as the front speaks it: `POST /` with `X-Amz-Target:
 * Kinesis_20131202.<Operation>` and a JSON body; answers are JSON, errors are `{"__type", "message"}`
 * with the HTTP status of the error.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ErrorAnswer } from './service-errors.js';
import type { UpstreamResponse } from './upstream.js';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'Kinesis_20131202.';

/**
 * Headers that describe one hop, not the request: the front's own connections set them. `expect` is
 * dropped because Node's server has already answered `100-continue` to the client.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);

/**
 * The headers that say who is calling. kinesis-local does not check signatures but requires an
 * `Authorization` header, and takes the region (and account) of the streams from its credential scope,
 * so the front's own upstream calls carry the client's.
 */
const IDENTITY = ['authorization', 'x-amz-date', 'x-amz-security-token'];

/** A stream as a request names it. */
export interface StreamRef {
  /** The stream name, also when the request gives the ARN: it keys the front's per-stream state. */
  readonly name: string;
  /** How to name the stream to upstream, as the client did. */
  readonly selector: { readonly StreamName: string } | { readonly StreamARN: string };
}

/** The operation a request calls, from `X-Amz-Target`, or undefined when it names none. */
export function operationOf(headers: IncomingHttpHeaders): string | undefined {
  const target = headers['x-amz-target'];
  return typeof target === 'string' && target.startsWith(TARGET_PREFIX)
    ? target.slice(TARGET_PREFIX.length)
    : undefined;
}

/** True when the body is JSON (the Java SDK may send CBOR, which the front passes through untouched). */
export function isJsonBody(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'] ?? '';
  return type.startsWith('application/x-amz-json') || type.startsWith('application/json');
}

/** The region in the credential scope of the request's signature, e.g. `us-east-1`. */
export function regionOf(headers: IncomingHttpHeaders): string {
  return /Credential=[^/]*\/[^/]*\/([^/]+)\//.exec(headers.authorization ?? '')?.[1] ?? 'us-east-1';
}

/** The client's headers, for forwarding its request upstream. */
export function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/** The client's identity headers, for the front's own upstream calls on its behalf. */
export function identityHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of IDENTITY) {
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The stream a request body names, by `StreamName` or `StreamARN`. */
export function streamOf(body: Readonly<Record<string, unknown>>): StreamRef | undefined {
  if (typeof body.StreamName === 'string') {
    return { name: body.StreamName, selector: { StreamName: body.StreamName } };
  }
  if (typeof body.StreamARN === 'string') {
    // arn:aws:kinesis:<region>:<account>:stream/<name>
    const name = body.StreamARN.slice(body.StreamARN.indexOf(':stream/') + ':stream/'.length);
    return { name, selector: { StreamARN: body.StreamARN } };
  }
  return undefined;
}

/** The whole body of a request. Rejects if the connection closes first. */
export async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A JSON object body, or undefined when the body is not one. */
export function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Answers with a JSON body. */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, { 'content-type': JSON_CONTENT_TYPE }, Buffer.from(JSON.stringify(body)));
}

/** Answers with a service error. */
export function sendError(response: ServerResponse, answer: ErrorAnswer): void {
  sendJson(response, answer.status, { __type: answer.code, message: answer.message });
}

/** Answers with what upstream answered. */
export function relay(response: ServerResponse, upstream: UpstreamResponse): void {
  send(response, upstream.status, forwardedHeaders(upstream.headers), upstream.body);
}

function send(response: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: Buffer): void {
  if (response.headersSent || response.destroyed) return;
  response.writeHead(status, {
    'x-amzn-requestid': randomUUID(),
    ...headers,
    'content-length': body.length,
  });
  response.end(body);
}
