/** A stream as the caller named it: by name or by ARN. PutRecords and ListShards take either. */
export interface StreamRef {
  /** How the stream is named in logs, errors and metrics. */
  readonly label: string;
  readonly streamName: string | undefined;
  readonly streamARN: string | undefined;
}

export function streamRef(streamName: string | undefined, streamARN: string | undefined): StreamRef {
  return { label: streamName ?? streamARN ?? '', streamName, streamARN };
}

/** The `StreamName`/`StreamARN` parameters of a Kinesis API call. */
export function streamParams(ref: StreamRef): { StreamName?: string; StreamARN?: string } {
  return ref.streamARN !== undefined ? { StreamARN: ref.streamARN } : { StreamName: ref.streamName! };
}

/** A StreamName as the Kinesis API documents it: 1..128 characters of this set. */
const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;
/**
 * A stream's ARN: `arn:<aws partition>:kinesis:<region>:<12-digit account>:stream/<stream name>`,
 * the name as STREAM_NAME. (The API's own pattern is looser: it also takes a consumer's ARN, an empty
 * region or any name, which the service then refuses per request.)
 */
const STREAM_ARN = /^arn:aws(-[a-z]+)*:kinesis:[a-z0-9-]+:\d{12}:stream\/[a-zA-Z0-9_.-]{1,128}$/;
export const MAX_STREAM_ARN_LENGTH = 2048;

/**
 * What a stream's name or ARN must be, when `value` (a non-empty string) is not one the Kinesis API
 * takes; undefined when it is. Checked where the stream is named: otherwise every record bound for it
 * would fail later with the service's ValidationException.
 */
export function streamIdExpected(field: 'streamName' | 'streamARN', value: string): string | undefined {
  if (field === 'streamName') {
    return STREAM_NAME.test(value)
      ? undefined
      : "a stream name of 1..128 characters from a-z, A-Z, 0-9, '_', '.' and '-'";
  }
  return value.length <= MAX_STREAM_ARN_LENGTH && STREAM_ARN.test(value)
    ? undefined
    : 'a Kinesis stream ARN (arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>)';
}

/** The region an ARN of the shape above names. */
export function arnRegion(arn: string): string {
  return arn.split(':', 4)[3]!;
}
