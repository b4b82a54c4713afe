/**
 * A fault-injecting Kinesis front for the integration tests: an HTTP/1.1 server speaking the Kinesis
 * JSON 1.1 protocol in front of a real Kinesis API server (kinesis-local), which does not enforce the
 * service limits and never fails on its own.
 *
 * Every operation is forwarded to upstream as is, except PutRecords and PutRecord, which the front
 * handles like the service does: it routes each entry to its shard, enforces the request limits and
 * (when configured) the per-shard write limits, injects faults, forwards the entries that get through as
 * one PutRecords, and merges upstream's results back into the client's order. Any request, of any
 * operation, can be failed on purpose by a test's script.
 *
 * ```ts
 * const front = await startFaultFront({ upstream: inject('kinesisEndpoint'), shardLimits: SHARD_LIMITS });
 * front.script(({ operation, index }) =>
 *   operation === 'PutRecords' && index === 2 ? { request: 'service-unavailable' } : undefined,
 * );
 * const client = localClient(front.endpoint);
 * ```
 */
import { once, setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_CONFIG, type FaultFrontConfig, mergeConfig } from './fault-front/config.js';
import {
  type EntryFault,
  type FaultPlan,
  type FaultScript,
  forwardsFirst,
  NO_FAULTS,
  type RequestFault,
  type RoutedEntry,
  rollFaults,
  scriptedPlan,
} from './fault-front/faults.js';
import { type Random, seededRandom } from './fault-front/prng.js';
import { forwardBody, limitViolation, type PutRequest, parsePutRequest } from './fault-front/put-request.js';
import {
  entryError,
  entryFaultAnswer,
  faultAnswer,
  isPut,
  type Subject,
} from './fault-front/service-errors.js';
import { ShardMaps } from './fault-front/shard-map.js';
import { type FaultFrontStats, Stats } from './fault-front/stats.js';
import { ShardBuckets } from './fault-front/token-buckets.js';
import { Upstream, UpstreamRefusal, type UpstreamResponse } from './fault-front/upstream.js';
import {
  forwardedHeaders,
  identityHeaders,
  isJsonBody,
  isObject,
  operationOf,
  parseObject,
  readBody,
  regionOf,
  relay,
  sendError,
  sendJson,
  streamOf,
} from './fault-front/wire.js';

export type { FaultFrontConfig, ShardLimits } from './fault-front/config.js';
export type {
  EntryFault,
  ErrorFault,
  FaultScript,
  Latency,
  RequestContext,
  RequestFault,
  RequestFaultKind,
  RoutedEntry,
  ScriptedFaults,
} from './fault-front/faults.js';
export type { FaultFrontStats, ShardStats } from './fault-front/stats.js';

/** Options of {@link startFaultFront}: the upstream endpoint, and any settings to change from the defaults. */
export interface FaultFrontOptions extends Partial<FaultFrontConfig> {
  /** The Kinesis endpoint to forward to, e.g. `inject('kinesisEndpoint')`. */
  readonly upstream: string;
}

/** A running fault front. */
export interface FaultFront extends AsyncDisposable {
  /** Plain-HTTP endpoint for a Kinesis client, e.g. `http://127.0.0.1:40123`. */
  readonly endpoint: string;
  /**
   * Changes settings from now on; requests already being handled keep the settings they started with.
   * Each key given replaces its value whole. Giving `seed` restarts the random sequence; giving
   * `shardLimits` starts every shard with a full bucket again.
   * @throws {RangeError} naming the option when the result is not a valid configuration.
   */
  configure(changes: Partial<FaultFrontConfig>): void;
  /**
   * Installs a script that may decide the faults of every request, of any operation (`undefined`
   * removes it). Restarts the per-operation request index the script sees. A script that throws fails
   * its request with a 500 `FaultFrontError`.
   */
  script(script: FaultScript | undefined): void;
  /** A snapshot of the counters. */
  stats(): FaultFrontStats;
  /** Zeroes the counters. */
  resetStats(): void;
  /**
   * Stops listening, closes every connection (idle, busy, or held by a `hang` fault: their clients see
   * the socket close) and resolves once every request handler has finished. Returns the same promise
   * every time.
   */
  close(): Promise<void>;
}

/** Starts a fault front on a free loopback port. */
export async function startFaultFront(options: FaultFrontOptions): Promise<FaultFront> {
  const { upstream, ...config } = options;
  const front = new Front(upstream, mergeConfig(DEFAULT_CONFIG, config));
  await front.listen();
  return front;
}

/** How each PutRecords entry fared before upstream: failed by the front, or forwarded. */
type Admission = EntryFault | 'forwarded';

class Front implements FaultFront {
  #endpoint = '';
  #config: FaultFrontConfig;
  #random: Random;
  #buckets: ShardBuckets | undefined;
  #script: FaultScript | undefined;
  #requestIndexes = new Map<string, number>();
  #stats = new Stats();
  #closed: Promise<void> | undefined;
  /** Aborted by close(): cancels latency sleeps and upstream requests in flight. */
  readonly #closing = new AbortController();
  readonly #handlers = new Set<Promise<void>>();
  readonly #upstream: Upstream;
  readonly #shardMaps: ShardMaps;
  readonly #server: Server;

  constructor(upstream: string, config: FaultFrontConfig) {
    this.#config = config;
    // Every request in flight listens on this one signal: more than EventTarget's default 10 is normal.
    setMaxListeners(Number.POSITIVE_INFINITY, this.#closing.signal);
    this.#random = seededRandom(config.seed);
    this.#buckets = config.shardLimits === false ? undefined : new ShardBuckets(config.shardLimits);
    this.#upstream = new Upstream(upstream, this.#closing.signal);
    this.#shardMaps = new ShardMaps(this.#upstream);
    this.#server = createServer((request, response) => this.#dispatch(request, response));
  }

  get endpoint(): string {
    return this.#endpoint;
  }

  async listen(): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    // A server listening on a TCP port always has an AddressInfo address.
    const { port } = this.#server.address() as AddressInfo;
    this.#endpoint = `http://127.0.0.1:${port}`;
  }

  configure(changes: Partial<FaultFrontConfig>): void {
    const next = mergeConfig(this.#config, changes);
    if (changes.seed !== undefined) this.#random = seededRandom(next.seed);
    if (changes.shardLimits !== undefined) {
      this.#buckets = next.shardLimits === false ? undefined : new ShardBuckets(next.shardLimits);
    }
    this.#config = next;
  }

  script(script: FaultScript | undefined): void {
    this.#script = script;
    this.#requestIndexes = new Map();
  }

  stats(): FaultFrontStats {
    return this.#stats.snapshot();
  }

  resetStats(): void {
    this.#stats = new Stats();
  }

  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    this.#closing.abort();
    const closed = once(this.#server, 'close');
    this.#server.close();
    // server.close() only stops accepting; held and keep-alive connections would keep it open forever.
    this.#server.closeAllConnections();
    this.#upstream.close();
    await Promise.all([closed, ...this.#handlers]);
  }

  #dispatch(request: IncomingMessage, response: ServerResponse): void {
    const handler = this.#handle(request, response).catch((error: unknown) =>
      this.#fail(request, response, error),
    );
    this.#handlers.add(handler);
    void handler.finally(() => this.#handlers.delete(handler));
  }

  /** A bug in the front or in a script, or upstream unreachable: answer so the test sees it. */
  #fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    // Closing aborts whatever was in flight; those connections are already closed.
    if (this.#closing.signal.aborted) return;
    if (response.headersSent) {
      request.socket.destroy();
      return;
    }
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    sendError(response, { status: 500, code: 'FaultFrontError', message: `fault front: ${message}` });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const operation = operationOf(request.headers) ?? '(none)';
    this.#stats.request(operation);
    const index = this.#nextIndex(operation);
    const raw = await readBody(request);
    const put = isPut(operation) && isJsonBody(request.headers) ? parsePutRequest(operation, raw) : undefined;
    if (put === undefined) await this.#handleOther(request, response, operation, raw, index);
    else await this.#handlePut(request, response, put, index);
  }

  /** Forwards a request as is, applying only the faults a script decides. */
  async #handleOther(
    request: IncomingMessage,
    response: ServerResponse,
    operation: string,
    raw: Buffer,
    index: number,
  ): Promise<void> {
    const body = isJsonBody(request.headers) ? parseObject(raw) : undefined;
    const stream = body === undefined ? undefined : streamOf(body)?.name;
    const scripted = this.#script?.({ operation, stream, index, entries: [] });
    const plan = scripted === undefined ? NO_FAULTS : scriptedPlan(scripted);
    const subject = { operation, stream, region: regionOf(request.headers) };
    await this.#delay(plan.latencyMs);
    const fault = plan.request;
    if (fault !== undefined && !forwardsFirst(fault)) return this.#inject(fault, request, response, subject);
    const answer = await this.#upstream.send(forwardedHeaders(request.headers), raw);
    if (fault !== undefined) return this.#inject(fault, request, response, subject);
    relay(response, answer);
  }

  async #handlePut(
    request: IncomingMessage,
    response: ServerResponse,
    put: PutRequest,
    index: number,
  ): Promise<void> {
    const config = this.#config;
    const { operation, stream, entries } = put;
    this.#stats.entriesReceived += entries.length;
    const violation = limitViolation(put, config);
    if (violation !== undefined) {
      this.#stats.limitRejections++;
      return sendError(response, violation);
    }
    let shardIds: string[] | undefined;
    try {
      const hashKeys = entries.map((entry) => entry.hashKey);
      const identity = identityHeaders(request.headers);
      shardIds = await this.#shardMaps.route(stream, hashKeys, config.shardMapMaxAgeMs, identity);
    } catch (error) {
      if (!(error instanceof UpstreamRefusal)) throw error;
      return relay(response, error.response);
    }
    if (shardIds === undefined) {
      // Some hash key is in no open shard even in a fresh map: leave the request to upstream.
      return relay(response, await this.#upstream.send(forwardedHeaders(request.headers), put.raw));
    }

    const scripted = this.#script?.({
      operation,
      stream: stream.name,
      index,
      entries: routed(put, shardIds),
    });
    const plan =
      scripted === undefined ? rollFaults(config, entries.length, this.#random) : scriptedPlan(scripted);
    const subject = { operation, stream: stream.name, region: regionOf(request.headers) };
    await this.#delay(plan.latencyMs);
    const fault = plan.request;
    if (fault !== undefined && !forwardsFirst(fault)) return this.#inject(fault, request, response, subject);

    const admittedAtMs = performance.now();
    const admissions = this.#admit(put, shardIds, plan, admittedAtMs);
    const forwarded = [...admissions.keys()].filter((i) => admissions[i] === 'forwarded');
    this.#stats.entriesForwarded += forwarded.length;
    const answer =
      forwarded.length === 0
        ? undefined
        : await this.#upstream.send(forwardedHeaders(request.headers), forwardBody(put, forwarded));
    const stored = answer?.status === 200 ? readStored(put, answer, forwarded.length) : undefined;
    this.#countStored(put, shardIds, forwarded, stored?.results ?? [], admittedAtMs);

    if (fault !== undefined) return this.#inject(fault, request, response, subject);
    if (answer !== undefined && answer.status !== 200) return relay(response, answer);
    if (operation === 'PutRecords')
      return sendJson(response, 200, mergeResults(put, shardIds, admissions, stored));
    // PutRecord: its one entry was either failed by the front, or forwarded and stored.
    const admission = admissions[0]!;
    if (admission === 'forwarded') return relay(response, answer!);
    sendError(response, entryFaultAnswer(admission, stream.name, shardIds[0]!));
  }

  /**
   * Decides, entry by entry, which are failed by a fault, which by the shard limits, and which go
   * upstream. Runs without awaiting, so concurrent requests take from the buckets one whole request at a
   * time.
   */
  #admit(put: PutRequest, shardIds: readonly string[], plan: FaultPlan, nowMs: number): Admission[] {
    return put.entries.map((entry, i) => {
      const fault = plan.entries[i];
      if (fault !== undefined) {
        this.#stats.entryFaults[fault]++;
        return fault;
      }
      if (this.#buckets?.tryTake(`${put.stream.name}/${shardIds[i]}`, entry.bytes, nowMs) === false) {
        this.#stats.entriesThrottled++;
        return 'throttle';
      }
      return 'forwarded';
    });
  }

  /** Counts what upstream stored, and drops the shard map when upstream routed otherwise than predicted. */
  #countStored(
    put: PutRequest,
    shardIds: readonly string[],
    forwarded: readonly number[],
    results: readonly Record<string, unknown>[],
    admittedAtMs: number,
  ): void {
    for (const [k, i] of forwarded.entries()) {
      const result = results[k];
      if (typeof result?.ShardId !== 'string' || typeof result.ErrorCode === 'string') continue;
      this.#stats.stored(put.stream.name, result.ShardId, put.entries[i]!.bytes, admittedAtMs);
      if (result.ShardId !== shardIds[i]) this.#shardMaps.forget(put.stream.name);
    }
  }

  /** Applies a whole-request fault in place of the answer. */
  #inject(fault: RequestFault, request: IncomingMessage, response: ServerResponse, subject: Subject): void {
    this.#stats.requestFault(typeof fault === 'object' ? fault.error : fault);
    switch (fault) {
      case 'hang':
      case 'stored-then-hang':
        // Never answer. The client's timeout ends the request, or close() does.
        return;
      case 'reset':
      case 'stored-then-reset':
        // RST rather than FIN: the client sees ECONNRESET, as when a connection dies mid-request.
        request.socket.resetAndDestroy();
        return;
      default:
        sendError(response, faultAnswer(fault, subject));
    }
  }

  async #delay(ms: number): Promise<void> {
    if (ms > 0) await sleep(ms, undefined, { signal: this.#closing.signal });
  }

  #nextIndex(operation: string): number {
    const index = this.#requestIndexes.get(operation) ?? 0;
    this.#requestIndexes.set(operation, index + 1);
    return index;
  }
}

/** The entries as a script sees them. */
function routed(put: PutRequest, shardIds: readonly string[]): RoutedEntry[] {
  return put.entries.map((entry, index) => ({
    index,
    partitionKey: entry.partitionKey,
    explicitHashKey: entry.explicitHashKey,
    data: Buffer.from(entry.data, 'base64'),
    shardId: shardIds[index]!,
  }));
}

/** Upstream's successful answer to the forwarded entries. */
interface StoredAnswer {
  readonly output: Record<string, unknown>;
  /** Upstream's result for each forwarded entry, in order (PutRecord's one result is the output itself). */
  readonly results: readonly Record<string, unknown>[];
}

function readStored(put: PutRequest, answer: UpstreamResponse, count: number): StoredAnswer {
  const output = parseObject(answer.body);
  const results = put.operation === 'PutRecord' ? [output] : output?.Records;
  if (
    output === undefined ||
    !Array.isArray(results) ||
    results.length !== count ||
    !results.every(isObject)
  ) {
    throw new Error(`upstream answered ${put.operation} with ${answer.body.toString('utf8')}`);
  }
  return { output, results };
}

/**
 * The PutRecords answer: upstream's result for each forwarded entry and the front's error for each
 * failed one, in request order. `stored` is undefined only when no entry was forwarded.
 */
function mergeResults(
  put: PutRequest,
  shardIds: readonly string[],
  admissions: readonly Admission[],
  stored: StoredAnswer | undefined,
): Record<string, unknown> {
  const results = stored?.results ?? [];
  let next = 0;
  const records = admissions.map((admission, i) =>
    admission === 'forwarded' ? results[next++]! : entryError(admission, put.stream.name, shardIds[i]!),
  );
  const failed = records.filter((record) => typeof record.ErrorCode === 'string').length;
  // With nothing forwarded there is no upstream answer to take EncryptionType from; the field is optional.
  const encryption = stored === undefined ? {} : { EncryptionType: stored.output.EncryptionType };
  return { FailedRecordCount: failed, Records: records, ...encryption };
}
