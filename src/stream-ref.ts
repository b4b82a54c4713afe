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
