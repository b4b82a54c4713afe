import { answerBodyStart } from './bounded-answer.js';
import { describeThrown } from './errors.js';

/**
 * What to do after a failed attempt: retry with backoff, or fail at once.
 *
 * The producer is the only retrier of PutRecords: the client it creates has the SDK's retries off, so
 * an attempt is exactly one HTTP request and this policy is the whole story. Retryable failures wait a
 * random time below `min(retryMaxDelayMs, retryBaseDelayMs * 2^(attempt-1))` (exponential backoff,
 * full jitter), never past the record's `recordTtlMs`. Failures that cannot succeed on retry fail the
 * affected records at once.
 */

/** The SDK says only "Region is missing"; this says where a region comes from. */
const CREDENTIALS_HINT =
  ': pass `credentials`, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values do for a local Kinesis), or name an AWS profile.';
const REGION_MISSING =
  'Region is missing: pass `region` to the producer (or to the client you give it), set AWS_REGION, or name a region in the AWS config profile.';

/** How a failure is treated. */
export const FailureKind = {
  /** Throttled by the service: retried (or failed at once with `failIfThrottled`). */
  Throttled: 'throttled',
  /** Transient: 5xx, per-record InternalFailure, timeouts, network errors. Retried. */
  Transient: 'transient',
  /**
   * Cannot succeed by retrying: missing stream, no permission, KMS key unusable, invalid request, an
   * endpoint whose TLS certificate Node does not trust.
   */
  Fatal: 'fatal',
} as const;
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'Throttling',
  'LimitExceededException',
  'KMSThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'SlowDown',
]);

const FATAL = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'InvalidClientTokenId',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSNotFoundException',
  'KMSInvalidStateException',
  'KMSOptInRequired',
  'ValidationException',
  'InvalidArgumentException',
  'SerializationException',
]);

/**
 * Node's codes for a TLS certificate it does not trust (OpenSSL's verification errors, and a name
 * the certificate does not cover): the endpoint's configuration, which no retry changes. Not those
 * of a certificate out of its dates (CERT_HAS_EXPIRED, CERT_NOT_YET_VALID): on a host whose clock
 * is not set yet (a container at boot) they pass, and are retried like a network error.
 */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Whether `code` is Node's for a TLS certificate it does not trust. */
export function isUntrustedCertificate(code: string): boolean {
  return UNTRUSTED_CERTIFICATE.has(code);
}

/**
 * 4xx answers that a later attempt can get past: temporary credentials the SDK fetches again (those
 * with an expiration; static ones never renew, and their records fail at their TTL), a stream that is
 * not ACTIVE yet (being created or resharded).
 */
const PASSING_CLIENT_ERRORS = new Set(['ExpiredTokenException', 'ResourceInUseException']);

/** The headers credentials fill, as Node names them when it refuses one: the key id and the token. */
const CREDENTIAL_HEADERS = /\["(authorization|x-amz-security-token)"\]/i;
/** @smithy/node-http-handler's message when its connectionTimeout passes before a connection (4.x; 2.x and 3.x). */
const CONNECT_TIMEOUT = /did not establish a connection|timed out without establishing a connection/;
/** OpenSSL's message for a TLS record that is not one: a plain-HTTP server's answer. */
const WRONG_TLS_VERSION = /wrong version number/i;
/** Messages of signature errors caused by clock skew. */
const SKEW = /signature expired|request time too skewed|clock skew/i;
/** How the SDK's message begins its note on an answer it could not parse. */
const DESERIALIZATION = /\bDeserialization error\b/;

/** Classifies a per-entry PutRecords error code. Unknown codes are retried: losing data is worse. */
export function classifyEntryError(errorCode: string): FailureKind {
  if (THROTTLING.has(errorCode)) return FailureKind.Throttled;
  if (FATAL.has(errorCode)) return FailureKind.Fatal;
  return FailureKind.Transient;
}

/** The code and message of a whole-request failure, as the records' attempts report it. */
export interface RequestFailure {
  readonly code: string;
  readonly message: string;
  readonly kind: FailureKind;
}

/**
 * Classifies an error thrown by `client.send(PutRecords)`: an SDK service exception (by its `name`,
 * then by HTTP status), our own request timeout, or a network error.
 *
 * `ExpiredTokenException` is retried (the SDK fetches again temporary credentials that carry their
 * expiration),
 * and so is `ResourceInUseException` (the stream is not ACTIVE yet), and a 408 (a request that timed
 * out on the way). Any other 4xx is fatal; 5xx and anything unrecognised is retried. An answer with no
 * Kinesis error in it gets the code `Http<status>`.
 */
export function classifyRequestError(error: unknown): RequestFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: number; clockSkewCorrected?: boolean };
    $fault?: unknown;
  };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  // Not String(error): an object without a prototype has no way to become a string.
  const message = typeof e.message === 'string' ? e.message : describeThrown(error);
  const errno = typeof e.code === 'string' ? e.code : undefined;
  if (THROTTLING.has(name)) return { code: name, message, kind: FailureKind.Throttled };
  // A signature refused because this host's clock is off: the SDK has just corrected its offset, so the
  // next request is signed right. (The SDK would retry it itself; the producer's client does not.)
  if (e.$metadata?.clockSkewCorrected === true || SKEW.test(message)) {
    return { code: name, message, kind: FailureKind.Transient };
  }
  if (name === 'ResourceNotFoundException') {
    // The service's message names the stream and account, not what is likely wrong.
    return {
      code: name,
      message: `${message.replace(/\.$/, '')}: check the stream's name and region.`,
      kind: FailureKind.Fatal,
    };
  }
  if (FATAL.has(name)) return { code: name, message, kind: FailureKind.Fatal };
  // The client's own configuration, which no retry changes: no region anywhere (options, AWS_REGION,
  // ~/.aws/config), or an endpoint that is not a URL.
  if (message === 'Region is missing') {
    return { code: 'RegionMissing', message: REGION_MISSING, kind: FailureKind.Fatal };
  }
  if (errno === 'ERR_INVALID_URL') return { code: errno, message, kind: FailureKind.Fatal };
  // A header Node refuses to send, the same on every request: credentials with a line ending or a
  // control character in them (AWS_ACCESS_KEY_ID from a .env file written on Windows), or a header
  // a middleware of your own adds. Node names the header in its message.
  if (errno === 'ERR_INVALID_CHAR') {
    const hint = CREDENTIAL_HEADERS.test(message)
      ? 'check the credentials (the `credentials` option, AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN) for a line ending or a control character left on them'
      : 'a header of the request holds a line ending or a control character (a header a middleware of your own adds?)';
    return { code: errno, message: `${message.replace(/\.$/, '')}: ${hint}.`, kind: FailureKind.Fatal };
  }
  // The SDK refuses its configuration before any request: a region that is no hostname
  // (AWS_REGION="eu-west-1 " from a .env file), or endpoint settings it cannot combine
  // (AWS_USE_FIPS_ENDPOINT or AWS_USE_DUALSTACK_ENDPOINT with an endpoint of your own).
  if (message.startsWith('Region not accepted')) {
    return {
      code: 'RegionNotAccepted',
      message: `${message} Check the \`region\` option, AWS_REGION and the AWS config profile.`,
      kind: FailureKind.Fatal,
    };
  }
  if (name === 'EndpointError') return { code: name, message, kind: FailureKind.Fatal };
  // An https:// endpoint whose server answers in plain HTTP: OpenSSL reads its first bytes as a TLS
  // record of an unknown version. No retry gets past it.
  if (errno === 'EPROTO' && WRONG_TLS_VERSION.test(message)) {
    return {
      code: errno,
      message: `${message.trim()}: the endpoint answered in plain HTTP, not TLS. For a local Kinesis's plain-HTTP port, use http:// in the endpoint.`,
      kind: FailureKind.Fatal,
    };
  }
  if (errno !== undefined && UNTRUSTED_CERTIFICATE.has(errno)) {
    return {
      code: errno,
      message: `${message}: Node does not trust the endpoint's TLS certificate. For a local Kinesis, use its plain-HTTP endpoint (http://), or have Node trust the certificate (NODE_EXTRA_CA_CERTS).`,
      kind: FailureKind.Fatal,
    };
  }
  // The handler's connectionTimeout: no connection, so no byte of the request was sent (unlike its
  // other TimeoutErrors, after which the service may have stored the records).
  if (name === 'TimeoutError' && errno === undefined && CONNECT_TIMEOUT.test(message)) {
    return { code: 'ConnectTimeout', message, kind: FailureKind.Transient };
  }
  const status = e.$metadata?.httpStatusCode;
  // An answer with no Kinesis error in it (a proxy's or gateway's page, an endpoint that is not
  // Kinesis): the SDK names it `Unknown`, or fails to parse it (`SyntaxError`). Its HTTP status is
  // what says something; it is classified as any answer of that status.
  if (
    status !== undefined &&
    (name === 'Unknown' || (name === 'SyntaxError' && DESERIALIZATION.test(message)))
  ) {
    // What the page said (the SDK's own message quotes only its first 10 characters).
    const body = (answerBodyStart(error) ?? '').replace(/\s+/g, ' ').trim();
    const said =
      body !== ''
        ? `; its body starts: ${body.length > MAX_QUOTED_BODY ? `${body.slice(0, MAX_QUOTED_BODY)}…` : body}`
        : message === 'UnknownError'
          ? ''
          : `: ${message.split('\n')[0]}`;
    return {
      code: `Http${status}`,
      message: `The endpoint answered HTTP ${status} with no Kinesis error in its body (a proxy or gateway, or an endpoint that is not Kinesis?)${said}`,
      kind: statusKind(status, name),
    };
  }
  const kind = statusKind(status, name);
  if (name === 'CredentialsProviderError') {
    // Retried: a provider may find them later (instance metadata at boot, a refreshed SSO session).
    return { code: name, message: `${message}${CREDENTIALS_HINT}`, kind };
  }
  // Network errors carry their errno code (ECONNRESET, EPIPE, ...); report that, it says more.
  return { code: kind === FailureKind.Transient ? (errno ?? name) : name, message, kind };
}

/** Most of an answer's body that is not JSON an error quotes. */
const MAX_QUOTED_BODY = 120;

/** How an answer of HTTP `status` (undefined: none came) that no rule above named is retried. */
function statusKind(status: number | undefined, name: string): FailureKind {
  if (status === 429) return FailureKind.Throttled;
  // A redirect: the endpoint is not where Kinesis answers (the SDK follows none), every time.
  if (status !== undefined && status >= 300 && status < 400) return FailureKind.Fatal;
  // 408 is a request that timed out on the way (at the service or a proxy), not a bad request.
  if (
    status !== undefined &&
    status >= 400 &&
    status < 500 &&
    status !== 408 &&
    !PASSING_CLIENT_ERRORS.has(name)
  ) {
    return FailureKind.Fatal;
  }
  return FailureKind.Transient;
}

/**
 * Full-jitter exponential backoff: a random wait in [0, min(max, base * 2^(attempt-1))).
 * `attempt` counts the failed attempts so far (1 after the first failure).
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * cap);
}
