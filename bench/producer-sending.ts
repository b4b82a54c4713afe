/**
 * KinesisProducer in the section "Sending through the SDK to the null sink", beside the SDK peers:
 * fire and forget (`send()` without a callback) and awaiting every record (`await put()`).
 */
import type { KinesisProducer, RecordFailedError } from '../src/index.js';
import type { Case, Metrics, RunSettings } from './case.js';
import type { Tally } from './measure.js';
import { benchProducer, RecordCycle, sendUntil, UNPACED_RATE_LIMIT, writtenDuring } from './producer-feed.js';
import {
  LARGER_YOUNG_GENERATION,
  measureAgainstSink,
  putCallers,
  SENDING_DATA_BYTES,
  sendingSection as section,
} from './sending.js';
import { PARTITION_KEYS, RECORD_SIZES, userRecords } from './workload.js';

interface ProducerParams {
  readonly recordBytes: number;
  readonly mode: 'send' | 'put';
  /** Distinct partition keys in the workload: `PARTITION_KEYS`, or one per record. */
  readonly keys: 'shared' | 'one per record';
}

/**
 * One producer for the warm-up and the measurement, as the peers keep one client: created on the
 * first call of the work, when the sink's endpoint is known, and closed after the measurement.
 */
async function runProducer(params: ProducerParams, settings: RunSettings): Promise<Metrics> {
  let producer: KinesisProducer | undefined;
  let failure: RecordFailedError | undefined;
  try {
    return await measureAgainstSink(settings, () => {
      const records = new RecordCycle(
        userRecords({
          recordBytes: params.recordBytes,
          totalBytes: SENDING_DATA_BYTES,
          keyCount: params.keys === 'shared' ? PARTITION_KEYS : recordCount(params.recordBytes),
        }),
      );
      const start = (endpoint: string) => {
        const started = benchProducer(endpoint, { rateLimit: UNPACED_RATE_LIMIT });
        started.on('recordFailed', (error) => {
          failure ??= error;
        });
        return started;
      };
      return async ({ endpoint }, until): Promise<Tally> => {
        producer ??= start(endpoint);
        const active = producer;
        const written =
          params.mode === 'send'
            ? // Flushed before the measurement ends: every record counted has reached the sink.
              await writtenDuring(active, () => sendUntil(active, records, until))
            : await putWithCallers(active, records, until, putCallers(params.recordBytes));
        if (failure !== undefined) throw failure;
        return { records: written, bytes: written * params.recordBytes };
      };
    });
  } finally {
    await producer?.close();
  }
}

/** `callers` callers, each awaiting its put before the next, until `until`. */
async function putWithCallers(
  producer: KinesisProducer,
  records: RecordCycle,
  until: number,
  callers: number,
): Promise<number> {
  let written = 0;
  // Each caller is one loop awaiting its own put: nothing between the caller and the producer.
  const caller = async () => {
    while (performance.now() < until) {
      await producer.put(records.next());
      written++;
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
  return written;
}

/** User records in a sending workload of `recordBytes` records. */
function recordCount(recordBytes: number): number {
  return Math.floor(SENDING_DATA_BYTES / recordBytes);
}

/** The row label of a producer case. */
function producerLabel(mode: ProducerParams['mode'], recordBytes: number): string {
  return mode === 'send'
    ? 'KinesisProducer send(), fire and forget'
    : `KinesisProducer await put(), ${putCallers(recordBytes).toLocaleString('en-US')} callers`;
}

export const producerSendingCases: readonly Case<ProducerParams>[] = RECORD_SIZES.flatMap(
  ({ bytes, label }) =>
    (['send', 'put'] as const).flatMap((mode) => [
      {
        name: `sdk/producer-${mode}/${bytes}`,
        section,
        group: label,
        label: producerLabel(mode, bytes),
        params: { recordBytes: bytes, mode, keys: 'shared' as const },
        run: runProducer,
      },
      // Again with a larger young generation where the promises' garbage is most of put()'s cost (at
      // 10 KiB there are 512 callers); send() too, so that put() is compared with it like for like.
      ...(bytes <= 1024
        ? [
            {
              name: `sdk/producer-${mode}-young64/${bytes}`,
              section,
              group: label,
              label: `${producerLabel(mode, bytes)}, node ${LARGER_YOUNG_GENERATION}`,
              params: { recordBytes: bytes, mode, keys: 'shared' as const },
              nodeFlags: [LARGER_YOUNG_GENERATION],
              run: runProducer,
            },
          ]
        : []),
      // Keys seldom repeated (a UUID per event is common): each record's key is new to the producer,
      // past its key cache, so every record pays for measuring and hashing its key.
      ...(bytes === 100 && mode === 'send'
        ? [
            {
              name: `sdk/producer-send-unique-keys/${bytes}`,
              section,
              group: label,
              label: `${producerLabel(mode, bytes)}, a key per record (${recordCount(bytes).toLocaleString('en-US')} keys)`,
              params: { recordBytes: bytes, mode, keys: 'one per record' as const },
              run: runProducer,
            },
          ]
        : []),
    ]),
);
