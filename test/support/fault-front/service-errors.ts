/**
 * The errors the front answers with, in the shapes and words of the real service, so that a client sees
 * exactly what it would see from Kinesis. Whole-request errors travel as JSON 1.1 error bodies
 * (`{"__type": code, "message": …}`): the AWS SDK reads `__type` first and reports it as `error.name`.
 * Per-entry errors travel inside a successful PutRecords answer as `ErrorCode`/`ErrorMessage`.
 */
import type { EntryFault, ErrorFault, RequestFaultKind } from './faults.js';

/** The account kinesis-local puts every stream in unless told otherwise (its `AWS_ACCOUNT_ID` default). */
const ACCOUNT_ID = '000000000000';

/** A whole-request error answer. */
export interface ErrorAnswer {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** A failed entry in a PutRecords answer. */
export interface EntryError {
  readonly ErrorCode: string;
  readonly ErrorMessage: string;
}

/** What an answer is about, for the messages that name it. */
export interface Subject {
  readonly operation: string;
  readonly stream: string | undefined;
  readonly region: string;
}

/** The request faults that are answered with an error (the others hang or reset). */
export type ErrorFaultKind = Exclude<
  RequestFaultKind,
  'hang' | 'stored-then-hang' | 'reset' | 'stored-then-reset'
>;

const INTERNAL_FAILURE: ErrorAnswer = {
  status: 500,
  code: 'InternalFailure',
  message: 'The request processing has failed because of an unknown error, exception or failure.',
};

/** The answer to a whole-request error fault. */
export function faultAnswer(fault: ErrorFaultKind | ErrorFault, subject: Subject): ErrorAnswer {
  if (typeof fault === 'object') {
    return { status: fault.status, code: fault.error, message: fault.message ?? `Injected ${fault.error}.` };
  }
  const stream = subject.stream ?? '';
  switch (fault) {
    case 'internal-failure':
      return INTERNAL_FAILURE;
    case 'service-unavailable':
      return {
        status: 503,
        code: 'ServiceUnavailable',
        message: 'The request has failed due to a temporary failure of the server.',
      };
    case 'throttle':
      // Data-plane writes are throttled with ProvisionedThroughputExceededException; the control-plane
      // operations (ListShards, DescribeStreamSummary, …) with LimitExceededException.
      return {
        status: 400,
        code: isPut(subject.operation) ? 'ProvisionedThroughputExceededException' : 'LimitExceededException',
        message: `Rate exceeded for stream ${stream} under account ${ACCOUNT_ID}.`,
      };
    case 'resource-not-found':
      return {
        status: 400,
        code: 'ResourceNotFoundException',
        message: `Stream ${stream} under account ${ACCOUNT_ID} not found.`,
      };
    case 'access-denied':
      return {
        status: 400,
        code: 'AccessDeniedException',
        message:
          `User: arn:aws:iam::${ACCOUNT_ID}:user/local is not authorized to perform: kinesis:${subject.operation}` +
          ` on resource: arn:aws:kinesis:${subject.region}:${ACCOUNT_ID}:stream/${stream}` +
          ` because no identity-based policy allows the kinesis:${subject.operation} action`,
      };
    case 'expired-token':
      return {
        status: 400,
        code: 'ExpiredTokenException',
        message: 'The security token included in the request is expired',
      };
  }
}

/** The result of a PutRecords entry that failed with `fault`. */
export function entryError(fault: EntryFault, stream: string, shardId: string): EntryError {
  return fault === 'throttle'
    ? {
        ErrorCode: 'ProvisionedThroughputExceededException',
        ErrorMessage: `Rate exceeded for shard ${shardId} in stream ${stream} under account ${ACCOUNT_ID}.`,
      }
    : { ErrorCode: 'InternalFailure', ErrorMessage: 'Internal service failure.' };
}

/** PutRecord has no per-entry results: an entry fault fails the whole request. */
export function entryFaultAnswer(fault: EntryFault, stream: string, shardId: string): ErrorAnswer {
  if (fault === 'internal-failure') return INTERNAL_FAILURE;
  const { ErrorCode, ErrorMessage } = entryError(fault, stream, shardId);
  return { status: 400, code: ErrorCode, message: ErrorMessage };
}

/** PutRecords with no entries, or more than `max`. */
export function recordCountAnswer(count: number, max: number): ErrorAnswer {
  const constraint = count === 0 ? 'greater than or equal to 1' : `less than or equal to ${max}`;
  return validationError('records', `Member must have length ${constraint}`);
}

/** A record whose partition key + data is over `max` bytes; `field` is `records.<n>.member.data` or `data`. */
export function recordSizeAnswer(field: string, max: number): ErrorAnswer {
  return validationError(field, `Member must have length less than or equal to ${max}`);
}

/** A PutRecords request whose partition keys + data are over `max` bytes. */
export function requestSizeAnswer(max: number): ErrorAnswer {
  const MiB = 1024 * 1024;
  const limit = max % MiB === 0 ? `${max / MiB} MB` : `${max} bytes`;
  return { status: 400, code: 'InvalidArgumentException', message: `Records size exceeds ${limit} limit` };
}

/**
 * The service's model-validation message, without echoing the offending value (which can be megabytes):
 * "1 validation error detected: Value at 'records' failed to satisfy constraint: …".
 */
function validationError(field: string, constraint: string): ErrorAnswer {
  return {
    status: 400,
    code: 'ValidationException',
    message: `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`,
  };
}

/** True for the operations whose entries the front routes, limits and fails one by one. */
export function isPut(operation: string): operation is 'PutRecords' | 'PutRecord' {
  return operation === 'PutRecords' || operation === 'PutRecord';
}
