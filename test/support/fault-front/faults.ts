/**
 * What can go wrong, and how the front decides what goes wrong for one request: either a test's
 * script says so, or the configured rates are rolled with the seeded generator.
 */
import type { Random } from './prng.js';

/**
 * Faults that replace the whole answer to a request.
 *
 * - `internal-failure`: 500 `InternalFailure`.
 * - `service-unavailable`: 503 `ServiceUnavailable`.
 * - `throttle`: 400 `ProvisionedThroughputExceededException` for PutRecords/PutRecord (what the
 *   service documents for them), 400 `LimitExceededException` for every other operation (what the
 *   control-plane operations such as ListShards and DescribeStreamSummary document).
 * - `resource-not-found`, `access-denied`, `expired-token`: 400 `ResourceNotFoundException`,
 *   `AccessDeniedException`, `ExpiredTokenException`.
 * - `hang`: nothing is forwarded and nothing is answered; the socket stays open until the client gives
 *   up or the front closes.
 * - `stored-then-hang`: the request is forwarded upstream (for PutRecords: the records are stored),
 *   then left unanswered: the "stored but not acknowledged" case that makes retries write duplicates.
 * - `reset`: the connection is reset (TCP RST) without forwarding.
 * - `stored-then-reset`: forwarded upstream, then the connection is reset instead of answered.
 */
export const REQUEST_FAULT_KINDS = [
  'internal-failure',
  'service-unavailable',
  'throttle',
  'resource-not-found',
  'access-denied',
  'expired-token',
  'hang',
  'stored-then-hang',
  'reset',
  'stored-then-reset',
] as const;

/** A named whole-request fault; see {@link REQUEST_FAULT_KINDS}. */
export type RequestFaultKind = (typeof REQUEST_FAULT_KINDS)[number];

/** Any other service error, answered as `{"__type": error, "message": message}` with `status`. */
export interface ErrorFault {
  /** The error code, which the AWS SDK reports as `error.name`, e.g. `KMSThrottlingException`. */
  readonly error: string;
  /** The HTTP status, e.g. 400. */
  readonly status: number;
  /** @default `Injected <error>.` */
  readonly message?: string;
}

/** A fault that replaces the whole answer to a request. */
export type RequestFault = RequestFaultKind | ErrorFault;

/**
 * A fault for one PutRecords entry. The entry is not forwarded and its result carries the error the
 * service gives: `InternalFailure` / "Internal service failure.", or
 * `ProvisionedThroughputExceededException` / "Rate exceeded for shard …". For PutRecord the same
 * fault answers the whole request (500 `InternalFailure`, or 400 `ProvisionedThroughputExceededException`).
 */
export type EntryFault = 'internal-failure' | 'throttle';

/** One PutRecords (or PutRecord) entry as the front routed it. */
export interface RoutedEntry {
  /** Position in the request's `Records`. */
  readonly index: number;
  readonly partitionKey: string;
  readonly explicitHashKey: string | undefined;
  readonly data: Buffer;
  /** The open shard the front predicts the service will store this entry in. */
  readonly shardId: string;
}

/** What a {@link FaultScript} is told about a request. */
export interface RequestContext {
  /** The operation, e.g. `PutRecords`, `ListShards` (from `X-Amz-Target`). */
  readonly operation: string;
  /** The stream name (taken from `StreamARN` when the request names the stream by ARN), if any. */
  readonly stream: string | undefined;
  /**
   * 0-based position of this request among the requests for the same operation received since the
   * script was installed, in order of arrival.
   */
  readonly index: number;
  /** The routed entries of a PutRecords/PutRecord request; empty for other operations. */
  readonly entries: readonly RoutedEntry[];
}

/** What a {@link FaultScript} decides for one request. Absent fields mean "no such fault". */
export interface ScriptedFaults {
  /** Replace the whole answer. */
  readonly request?: RequestFault;
  /** Per-entry faults, indexed like {@link RequestContext.entries}; `undefined` slots go through. */
  readonly entries?: readonly (EntryFault | undefined)[];
  /** Delay before the request is handled. */
  readonly latencyMs?: number;
}

/**
 * Decides the faults of one request. Returning `undefined` leaves the request to the configured rates;
 * returning an object applies exactly those faults and no random ones. Service limits (request size,
 * shard throughput) are not faults: they apply either way.
 */
export type FaultScript = (context: RequestContext) => ScriptedFaults | undefined;

/** A fixed delay, or one drawn uniformly from [minMs, maxMs] for each request. */
export type Latency = number | { readonly minMs: number; readonly maxMs: number };

/** The random faults of PutRecords/PutRecord requests. */
export interface FaultRates {
  /** Probability of each whole-request fault; they are exclusive, so they must sum to at most 1. */
  readonly requestFaultRates: Readonly<Partial<Record<RequestFaultKind, number>>>;
  /** Probability that an entry fails with `InternalFailure` instead of being forwarded. */
  readonly entryFailureRate: number;
  /** Added to every PutRecords/PutRecord request. */
  readonly latencyMs: Latency;
}

/** The faults the front applies to one request. */
export interface FaultPlan {
  readonly request: RequestFault | undefined;
  /** Indexed like the request's entries. */
  readonly entries: readonly (EntryFault | undefined)[];
  readonly latencyMs: number;
}

/**
 * The configured faults of one PutRecords/PutRecord request. Draws happen in a fixed order (latency,
 * request fault, then one per entry) so that the same seed and the same requests give the same faults.
 */
export function rollFaults(rates: FaultRates, entryCount: number, random: Random): FaultPlan {
  const { latencyMs } = rates;
  const latency =
    typeof latencyMs === 'number'
      ? latencyMs
      : latencyMs.minMs + random() * (latencyMs.maxMs - latencyMs.minMs);
  let request: RequestFault | undefined;
  let draw = random();
  for (const kind of REQUEST_FAULT_KINDS) {
    const rate = rates.requestFaultRates[kind] ?? 0;
    if (draw < rate) {
      request = kind;
      break;
    }
    draw -= rate;
  }
  const entries: (EntryFault | undefined)[] = [];
  for (let i = 0; i < entryCount; i++) {
    entries.push(random() < rates.entryFailureRate ? 'internal-failure' : undefined);
  }
  return { request, entries, latencyMs: latency };
}

/** The plan for a request the script decided. */
export function scriptedPlan(scripted: ScriptedFaults): FaultPlan {
  return {
    request: scripted.request,
    entries: scripted.entries ?? [],
    latencyMs: scripted.latencyMs ?? 0,
  };
}

/** The plan of a request with no faults. */
export const NO_FAULTS: FaultPlan = { request: undefined, entries: [], latencyMs: 0 };

/** True for the faults that forward the request before failing it. */
export function forwardsFirst(fault: RequestFault): boolean {
  return fault === 'stored-then-hang' || fault === 'stored-then-reset';
}
