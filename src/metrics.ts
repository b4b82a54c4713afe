/**
 * The part of an OpenTelemetry `Meter` (from `@opentelemetry/api`) the producer uses. Declared here so
 * the package neither imports nor requires the API: any real `Meter` fits.
 */
export interface MeterLike {
  createCounter(name: string, options?: { description?: string; unit?: string }): CounterLike;
  createHistogram(name: string, options?: { description?: string; unit?: string }): HistogramLike;
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): object;
  addBatchObservableCallback(callback: BatchObservableCallback, observables: object[]): void;
  /** Called by `close()`, so a closed producer is neither observed nor kept alive by the Meter. */
  removeBatchObservableCallback?(callback: BatchObservableCallback, observables: object[]): void;
}
type BatchObservableCallback = (result: {
  observe(observable: object, value: number, attributes?: Attributes): void;
}) => void;
type Attributes = Record<string, string>;
interface CounterLike {
  add(value: number, attributes?: Attributes): void;
}
interface HistogramLike {
  record(value: number, attributes?: Attributes): void;
}

/**
 * The producer's metrics, with KPL's names, per stream and per shard, cumulative and over a sliding
 * window. Recording is a few additions into preallocated buckets; nothing is computed until a
 * snapshot is asked for.
 */

/** Window covered by the `window` figures of a snapshot. */
export const METRICS_WINDOW_MS = 60_000;
const BUCKET_MS = 5_000;
const BUCKETS = METRICS_WINDOW_MS / BUCKET_MS;

/**
 * Count, sum, min, max and mean of what was recorded. For a counter (UserRecordsPut, ErrorsByCode...)
 * `sum` is the number of things counted; for a distribution (BufferingTime...) each recorded value is
 * one observation.
 */
export interface StatSnapshot {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

/** A metric cumulative since the producer started, and over the last minute (the snapshot's `windowMs`). */
export interface MetricSnapshot {
  readonly total: StatSnapshot;
  readonly window: StatSnapshot;
}

/** Metrics of one shard (KPL's shard-level metrics). */
export interface ShardMetricsSnapshot {
  readonly UserRecordsPut: MetricSnapshot;
  readonly UserRecordsDataPut: MetricSnapshot;
  readonly KinesisRecordsPut: MetricSnapshot;
  readonly KinesisRecordsDataPut: MetricSnapshot;
  readonly AllErrors: MetricSnapshot;
  readonly ErrorsByCode: Readonly<Record<string, MetricSnapshot>>;
  readonly RetriesPerRecord: MetricSnapshot;
  readonly UserRecordExpired: MetricSnapshot;
  readonly BufferingTime: MetricSnapshot;
  readonly UserRecordsPerKinesisRecord: MetricSnapshot;
}

/** Metrics of one stream: the shard-level ones summed, plus the stream-level ones. */
export interface StreamMetricsSnapshot extends ShardMetricsSnapshot {
  readonly UserRecordsReceived: MetricSnapshot;
  /** User records accepted and not yet settled, now. */
  readonly UserRecordsPending: number;
  /** Age of the oldest record not yet settled, in ms (0 when none). */
  readonly OldestRecordAgeMs: number;
  readonly RequestTime: MetricSnapshot;
  readonly KinesisRecordsPerPutRecordsRequest: MetricSnapshot;
  readonly UserRecordsPerPutRecordsRequest: MetricSnapshot;
  readonly shards: Readonly<Record<string, ShardMetricsSnapshot>>;
}

/** What `producer.metrics()` returns. */
export interface MetricsSnapshot {
  /** When the snapshot was taken (ms since the epoch). */
  readonly at: number;
  readonly windowMs: number;
  readonly streams: Readonly<Record<string, StreamMetricsSnapshot>>;
}

/** Count/sum/min/max, cumulative and in time buckets that roll over as time passes. */
class Stat {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  readonly #bucketStart = new Float64Array(BUCKETS).fill(-1);
  readonly #count = new Float64Array(BUCKETS);
  readonly #sum = new Float64Array(BUCKETS);
  readonly #min = new Float64Array(BUCKETS);
  readonly #max = new Float64Array(BUCKETS);
  /** The bucket the last call wrote, and where its time starts (NaN before the first call). */
  #current = 0;
  #currentStart = Number.NaN;

  add(value: number, now: number): void {
    this.addMany(1, value, value, value, now);
  }

  /** Records `count` observations at once, given their sum, least and greatest. */
  addMany(count: number, sum: number, min: number, max: number, now: number): void {
    this.count += count;
    this.sum += sum;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    // Timestamps are doubles, so `%` on them is a library call: take the bucket of the last call
    // while time is still inside it (almost every call), and work it out only when time leaves it.
    let i = this.#current;
    if (!(now >= this.#currentStart && now < this.#currentStart + BUCKET_MS)) {
      const start = now - (now % BUCKET_MS);
      i = (start / BUCKET_MS) % BUCKETS;
      if (this.#bucketStart[i] !== start) {
        this.#bucketStart[i] = start;
        this.#count[i] = 0;
        this.#sum[i] = 0;
        this.#min[i] = Number.POSITIVE_INFINITY;
        this.#max[i] = Number.NEGATIVE_INFINITY;
      }
      this.#current = i;
      this.#currentStart = start;
    }
    this.#count[i]! += count;
    this.#sum[i]! += sum;
    if (min < this.#min[i]!) this.#min[i] = min;
    if (max > this.#max[i]!) this.#max[i] = max;
  }

  /** Whether nothing was recorded in the window that ends at `now`. */
  quiet(now: number): boolean {
    // The last bucket written, and so everything, is older than the window's oldest bucket.
    return !(this.#currentStart >= now - (now % BUCKET_MS) - (BUCKETS - 1) * BUCKET_MS);
  }

  snapshot(now: number): MetricSnapshot {
    let count = 0;
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    const oldest = now - (now % BUCKET_MS) - (BUCKETS - 1) * BUCKET_MS;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.#bucketStart[i]! < oldest) continue;
      count += this.#count[i]!;
      sum += this.#sum[i]!;
      if (this.#min[i]! < min) min = this.#min[i]!;
      if (this.#max[i]! > max) max = this.#max[i]!;
    }
    return {
      total: figures(this.count, this.sum, this.min, this.max),
      window: figures(count, sum, min, max),
    };
  }
}

function figures(count: number, sum: number, min: number, max: number): StatSnapshot {
  return count === 0
    ? { count: 0, sum: 0, min: 0, max: 0, mean: 0 }
    : { count, sum, min, max, mean: sum / count };
}

/** @internal The shard-level metrics; streams hold one of these for their totals too. */
export class ShardMetrics {
  readonly UserRecordsPut = new Stat();
  readonly UserRecordsDataPut = new Stat();
  readonly KinesisRecordsPut = new Stat();
  readonly KinesisRecordsDataPut = new Stat();
  readonly AllErrors = new Stat();
  readonly ErrorsByCode = new Map<string, Stat>();
  readonly RetriesPerRecord = new Stat();
  readonly UserRecordExpired = new Stat();
  readonly BufferingTime = new Stat();
  readonly UserRecordsPerKinesisRecord = new Stat();

  /** Whether nothing was recorded for it in the window that ends at `now`. */
  quiet(now: number): boolean {
    for (const stat of [
      this.UserRecordsPut,
      this.UserRecordsDataPut,
      this.KinesisRecordsPut,
      this.KinesisRecordsDataPut,
      this.AllErrors,
      this.RetriesPerRecord,
      this.UserRecordExpired,
      this.BufferingTime,
      this.UserRecordsPerKinesisRecord,
      ...this.ErrorsByCode.values(),
    ]) {
      if (!stat.quiet(now)) return false;
    }
    return true;
  }

  error(code: string, count: number, now: number): void {
    let stat = this.ErrorsByCode.get(code);
    if (stat === undefined) {
      stat = new Stat();
      this.ErrorsByCode.set(code, stat);
    }
    stat.add(count, now);
    this.AllErrors.add(count, now);
  }

  snapshot(now: number): ShardMetricsSnapshot {
    return {
      UserRecordsPut: this.UserRecordsPut.snapshot(now),
      UserRecordsDataPut: this.UserRecordsDataPut.snapshot(now),
      KinesisRecordsPut: this.KinesisRecordsPut.snapshot(now),
      KinesisRecordsDataPut: this.KinesisRecordsDataPut.snapshot(now),
      AllErrors: this.AllErrors.snapshot(now),
      ErrorsByCode: keyed([...this.ErrorsByCode].map(([code, stat]) => [code, stat.snapshot(now)])),
      RetriesPerRecord: this.RetriesPerRecord.snapshot(now),
      UserRecordExpired: this.UserRecordExpired.snapshot(now),
      BufferingTime: this.BufferingTime.snapshot(now),
      UserRecordsPerKinesisRecord: this.UserRecordsPerKinesisRecord.snapshot(now),
    };
  }
}

/** @internal One stream's metrics. */
export class StreamMetrics {
  readonly stream: ShardMetrics = new ShardMetrics();
  readonly shards = new Map<string, ShardMetrics>();
  /**
   * The stream's open shards, once a shard map said (see {@link ProducerMetrics.openShards});
   * undefined without a map, when any quiet shard's entry goes.
   */
  open: ReadonlySet<string> | undefined = undefined;
  /** When quiet shards' entries may next be looked for, as a shard new to these metrics comes. */
  nextDropAt = Number.NEGATIVE_INFINITY;
  readonly UserRecordsReceived = new Stat();
  readonly RequestTime = new Stat();
  readonly KinesisRecordsPerPutRecordsRequest = new Stat();
  readonly UserRecordsPerPutRecordsRequest = new Stat();

  snapshot(now: number, pending: number, oldestAgeMs: number): StreamMetricsSnapshot {
    return {
      ...this.stream.snapshot(now),
      UserRecordsReceived: this.UserRecordsReceived.snapshot(now),
      UserRecordsPending: pending,
      OldestRecordAgeMs: oldestAgeMs,
      RequestTime: this.RequestTime.snapshot(now),
      KinesisRecordsPerPutRecordsRequest: this.KinesisRecordsPerPutRecordsRequest.snapshot(now),
      UserRecordsPerPutRecordsRequest: this.UserRecordsPerPutRecordsRequest.snapshot(now),
      shards: keyed([...this.shards].map(([id, shard]) => [id, shard.snapshot(now)])),
    };
  }
}

/**
 * @internal The same events, as OpenTelemetry instruments of the caller's `Meter` (the API is an
 * optional peer dependency: only its types are imported here). Attributes follow KPL's CloudWatch
 * dimensions: `StreamName`, `ShardId`, `ErrorCode`.
 */
export class OtelInstruments {
  readonly UserRecordsReceived: CounterLike;
  readonly UserRecordsPut: CounterLike;
  readonly UserRecordsDataPut: CounterLike;
  readonly KinesisRecordsPut: CounterLike;
  readonly KinesisRecordsDataPut: CounterLike;
  readonly ErrorsByCode: CounterLike;
  readonly AllErrors: CounterLike;
  readonly UserRecordExpired: CounterLike;
  readonly RetriesPerRecord: HistogramLike;
  readonly BufferingTime: HistogramLike;
  readonly RequestTime: HistogramLike;
  readonly UserRecordsPerKinesisRecord: HistogramLike;
  readonly KinesisRecordsPerPutRecordsRequest: HistogramLike;
  readonly UserRecordsPerPutRecordsRequest: HistogramLike;
  readonly #attributes = new Map<string, Attributes>();
  readonly #meter: MeterLike;
  readonly #gauges: SharedGauges;
  readonly #observe: () => Iterable<GaugeReading>;

  constructor(meter: MeterLike, observe: () => Iterable<GaugeReading>) {
    // An instrument that throws (its exporter shut down) must not throw out of the producer's work,
    // which would strand the records in hand: what it throws is dropped, as a logger's is.
    const guarded =
      (call: (value: number, attributes?: Attributes) => void) =>
      (value: number, attributes?: Attributes): void => {
        try {
          call(value, attributes);
        } catch {
          // Nowhere to tell it but the meter itself.
        }
      };
    const counter = (name: string, description: string, unit = '{record}'): CounterLike => {
      const instrument = meter.createCounter(name, { description, unit });
      return { add: guarded((value, attributes) => instrument.add(value, attributes)) };
    };
    const histogram = (name: string, description: string, unit: string): HistogramLike => {
      const instrument = meter.createHistogram(name, { description, unit });
      return { record: guarded((value, attributes) => instrument.record(value, attributes)) };
    };
    this.UserRecordsReceived = counter('UserRecordsReceived', 'User records accepted by put/send');
    this.UserRecordsPut = counter('UserRecordsPut', 'User records written');
    this.UserRecordsDataPut = counter(
      'UserRecordsDataPut',
      'Bytes of user records written (partition key + data)',
      'By',
    );
    this.KinesisRecordsPut = counter('KinesisRecordsPut', 'Kinesis records stored');
    this.KinesisRecordsDataPut = counter(
      'KinesisRecordsDataPut',
      'Bytes of Kinesis records stored (partition key + data)',
      'By',
    );
    this.ErrorsByCode = counter('ErrorsByCode', 'Failed attempts of user records, by error code', '{error}');
    this.AllErrors = counter('AllErrors', 'Failed attempts of user records', '{error}');
    this.UserRecordExpired = counter('UserRecordExpired', 'User records that expired (recordTtlMs)');
    this.RetriesPerRecord = histogram('RetriesPerRecord', 'Retries a user record needed', '{retry}');
    this.BufferingTime = histogram('BufferingTime', 'Time from a record arriving to its first send', 'ms');
    this.RequestTime = histogram('RequestTime', 'Duration of PutRecords requests', 'ms');
    this.UserRecordsPerKinesisRecord = histogram(
      'UserRecordsPerKinesisRecord',
      'User records per Kinesis record',
      '{record}',
    );
    this.KinesisRecordsPerPutRecordsRequest = histogram(
      'KinesisRecordsPerPutRecordsRequest',
      'Kinesis records per request',
      '{record}',
    );
    this.UserRecordsPerPutRecordsRequest = histogram(
      'UserRecordsPerPutRecordsRequest',
      'User records per request',
      '{record}',
    );
    this.#meter = meter;
    let gauges = sharedGauges.get(meter);
    if (gauges === undefined) {
      gauges = new SharedGauges(meter);
      sharedGauges.set(meter, gauges);
    }
    this.#gauges = gauges;
    this.#observe = observe;
    gauges.sources.add(observe);
  }

  /** Stops observing the gauges: the Meter no longer calls into (and holds) the closed producer. */
  close(): void {
    const gauges = this.#gauges;
    gauges.sources.delete(this.#observe);
    if (gauges.sources.size > 0 || this.#meter.removeBatchObservableCallback === undefined) return;
    gauges.close();
    sharedGauges.delete(this.#meter);
  }

  /** Drops the cached attributes of a shard whose metrics went (see ProducerMetrics.openShards). */
  forgetShard(stream: string, shardId: string): void {
    const prefix = `${stream}\u0000${shardId}\u0000`;
    for (const key of this.#attributes.keys()) if (key.startsWith(prefix)) this.#attributes.delete(key);
  }

  /** Attribute objects are cached: recording must not allocate per record. */
  attributes(stream: string, shardId: string | undefined, errorCode?: string): Attributes {
    const key = `${stream}\u0000${shardId ?? ''}\u0000${errorCode ?? ''}`;
    let attributes = this.#attributes.get(key);
    if (attributes === undefined) {
      const fresh: Attributes = { StreamName: stream };
      if (shardId !== undefined) fresh.ShardId = shardId;
      if (errorCode !== undefined) fresh.ErrorCode = errorCode;
      attributes = fresh;
      this.#attributes.set(key, attributes);
    }
    return attributes;
  }
}

/** One producer's figures for one stream's gauges. */
interface GaugeReading {
  readonly stream: string;
  readonly pending: number;
  readonly oldestAgeMs: number;
}

/**
 * The gauges of every producer sharing one Meter, observed by one callback: it adds up their pending
 * records per stream and takes the oldest record of any. (A gauge keeps one value per set of
 * attributes, so producers observing on their own would each overwrite the others' figures.)
 */
class SharedGauges {
  readonly sources = new Set<() => Iterable<GaugeReading>>();
  readonly #meter: MeterLike;
  readonly #observed: object[];
  readonly #callback: BatchObservableCallback;
  readonly #attributes = new Map<string, Attributes>();

  constructor(meter: MeterLike) {
    const pending = meter.createObservableGauge('UserRecordsPending', {
      description: 'User records accepted and not yet settled',
      unit: '{record}',
    });
    const oldest = meter.createObservableGauge('OldestRecordAgeMs', {
      description: 'Age of the oldest record not yet settled',
      unit: 'ms',
    });
    this.#meter = meter;
    this.#observed = [pending, oldest];
    this.#callback = (result) => {
      const byStream = new Map<string, { pending: number; oldestAgeMs: number }>();
      for (const source of this.sources) {
        for (const reading of source()) {
          const sum = byStream.get(reading.stream);
          if (sum === undefined) {
            byStream.set(reading.stream, { pending: reading.pending, oldestAgeMs: reading.oldestAgeMs });
          } else {
            sum.pending += reading.pending;
            sum.oldestAgeMs = Math.max(sum.oldestAgeMs, reading.oldestAgeMs);
          }
        }
      }
      for (const [stream, sum] of byStream) {
        let attributes = this.#attributes.get(stream);
        if (attributes === undefined) {
          attributes = { StreamName: stream };
          this.#attributes.set(stream, attributes);
        }
        result.observe(pending, sum.pending, attributes);
        result.observe(oldest, sum.oldestAgeMs, attributes);
      }
      // A stream no producer reports any more (they closed) loses its attributes, or a Meter that
      // outlives producers of ever new streams would keep one object per name it ever saw.
      if (this.#attributes.size > byStream.size) {
        for (const stream of this.#attributes.keys()) {
          if (!byStream.has(stream)) this.#attributes.delete(stream);
        }
      }
    };
    meter.addBatchObservableCallback(this.#callback, this.#observed);
  }

  close(): void {
    try {
      this.#meter.removeBatchObservableCallback?.(this.#callback, this.#observed);
    } catch {
      // A meter that throws here must not keep close() from finishing.
    }
  }
}

/** The gauges of each Meter in use, shared by the producers given it. */
const sharedGauges = new WeakMap<MeterLike, SharedGauges>();

/** @internal What {@link ProducerMetrics.written} records for one Kinesis record. */
export interface WrittenFigures {
  userRecords: number;
  userBytes: number;
  kinesisBytes: number;
  retriesSum: number;
  retriesMin: number;
  retriesMax: number;
  bufferingSum: number;
  bufferingMin: number;
  bufferingMax: number;
}

/** @internal Records the producer's events into per-stream metrics and, if given, an OpenTelemetry Meter. */
export class ProducerMetrics {
  readonly #streams = new Map<string, StreamMetrics>();
  /** The open shards of streams no record has been put to yet: they get an entry with the first. */
  readonly #openBeforeUse = new Map<string, ReadonlySet<string>>();
  readonly #otel: OtelInstruments | undefined;
  #lastLabel: string | undefined;
  #lastMetrics: StreamMetrics | undefined;

  constructor(
    meter: MeterLike | undefined,
    observe: () => Iterable<{ stream: string; pending: number; oldestAgeMs: number }>,
  ) {
    this.#otel = meter === undefined ? undefined : new OtelInstruments(meter, observe);
  }

  /** The producer closed: its gauges are no longer observed through the Meter. */
  close(): void {
    this.#otel?.close();
  }

  /**
   * The metrics of `shardId` in stream `label`, whose metrics are `m`. A shard new to them is when
   * their shards can grow (a reshard, or a shard back after a quiet window), so that is when quiet
   * ones are dropped, whether or not `metrics()` is ever called: without a shard map (ListShards
   * denied, a stream that routes records itself) nothing else would drop them.
   */
  #shard(label: string, m: StreamMetrics, shardId: string, now: number): ShardMetrics {
    let shard = m.shards.get(shardId);
    if (shard === undefined) {
      // At most once a bucket: without a map, a shard written to a little less than once a window is
      // new at every record, and looking over every shard each time would cost O(shards) a record.
      if (now >= m.nextDropAt) {
        m.nextDropAt = now + BUCKET_MS;
        this.#dropClosedShards(label, m, now);
      }
      shard = new ShardMetrics();
      m.shards.set(shardId, shard);
    }
    return shard;
  }

  stream(label: string): StreamMetrics {
    // Most producers write to one stream: skip the map for it.
    if (label === this.#lastLabel) return this.#lastMetrics!;
    let metrics = this.#streams.get(label);
    if (metrics === undefined) {
      metrics = new StreamMetrics();
      metrics.open = this.#openBeforeUse.get(label);
      this.#openBeforeUse.delete(label);
      this.#streams.set(label, metrics);
    }
    this.#lastLabel = label;
    this.#lastMetrics = metrics;
    return metrics;
  }

  received(stream: string, now: number): void {
    this.stream(stream).UserRecordsReceived.add(1, now);
    this.#otel?.UserRecordsReceived.add(1, this.#otel.attributes(stream, undefined));
  }

  request(
    stream: string,
    kinesisRecords: number,
    userRecords: number,
    durationMs: number,
    now: number,
  ): void {
    const m = this.stream(stream);
    m.RequestTime.add(durationMs, now);
    m.KinesisRecordsPerPutRecordsRequest.add(kinesisRecords, now);
    m.UserRecordsPerPutRecordsRequest.add(userRecords, now);
    const otel = this.#otel;
    if (otel !== undefined) {
      const attributes = otel.attributes(stream, undefined);
      otel.RequestTime.record(durationMs, attributes);
      otel.KinesisRecordsPerPutRecordsRequest.record(kinesisRecords, attributes);
      otel.UserRecordsPerPutRecordsRequest.record(userRecords, attributes);
    }
  }

  /**
   * A Kinesis record was stored: counts for it and its user records, and their retries and buffering
   * times gathered by the caller (one call per Kinesis record, not per user record).
   */
  written(stream: string, shardId: string, figures: WrittenFigures, now: number): void {
    this.kinesisRecordStored(stream, shardId, figures.kinesisBytes, now);
    const m = this.stream(stream);
    const n = figures.userRecords;
    for (const target of [m.stream, this.#shard(stream, m, shardId, now)]) {
      target.UserRecordsPerKinesisRecord.add(n, now);
      target.UserRecordsPut.add(n, now);
      target.UserRecordsDataPut.add(figures.userBytes, now);
      target.RetriesPerRecord.addMany(n, figures.retriesSum, figures.retriesMin, figures.retriesMax, now);
      target.BufferingTime.addMany(n, figures.bufferingSum, figures.bufferingMin, figures.bufferingMax, now);
    }
    const otel = this.#otel;
    if (otel !== undefined) {
      const attributes = otel.attributes(stream, shardId);
      otel.UserRecordsPerKinesisRecord.record(n, attributes);
      otel.UserRecordsPut.add(n, attributes);
      otel.UserRecordsDataPut.add(figures.userBytes, attributes);
    }
  }

  /**
   * A Kinesis record of `bytes` was stored in `shardId`: it counts in KinesisRecordsPut and
   * KinesisRecordsDataPut, as KPL counts every entry the service took, also one whose user records
   * are not written by it (they had settled already, or they are sent again: see `written`).
   */
  kinesisRecordStored(stream: string, shardId: string, bytes: number, now: number): void {
    const m = this.stream(stream);
    for (const target of [m.stream, this.#shard(stream, m, shardId, now)]) {
      target.KinesisRecordsPut.add(1, now);
      target.KinesisRecordsDataPut.add(bytes, now);
    }
    const otel = this.#otel;
    if (otel !== undefined) {
      const attributes = otel.attributes(stream, shardId);
      otel.KinesisRecordsPut.add(1, attributes);
      otel.KinesisRecordsDataPut.add(bytes, attributes);
    }
  }

  /** Whether per-record figures are wanted too (an OpenTelemetry histogram takes them one by one). */
  get perRecord(): boolean {
    return this.#otel !== undefined;
  }

  /**
   * A user record settled (written or failed) after `attempts` attempts, first sent `bufferingMs` after
   * arrival. Written records are counted in bulk by {@link written}; this is for failed ones, and for
   * OpenTelemetry's histograms (`recordWritten: true` then, so the bulk counts are not doubled).
   */
  settled(
    stream: string,
    shardId: string | undefined,
    attempts: number,
    bufferingMs: number | undefined,
    now: number,
    recordWritten = false,
  ): void {
    const retries = Math.max(0, attempts - 1);
    if (!recordWritten) {
      const m = this.stream(stream);
      const shard = shardId === undefined ? undefined : this.#shard(stream, m, shardId, now);
      m.stream.RetriesPerRecord.add(retries, now);
      shard?.RetriesPerRecord.add(retries, now);
      if (bufferingMs !== undefined) {
        m.stream.BufferingTime.add(bufferingMs, now);
        shard?.BufferingTime.add(bufferingMs, now);
      }
    }
    const otel = this.#otel;
    if (otel !== undefined) {
      const attributes = otel.attributes(stream, shardId);
      otel.RetriesPerRecord.record(retries, attributes);
      if (bufferingMs !== undefined) otel.BufferingTime.record(bufferingMs, attributes);
    }
  }

  /** `count` user records had an attempt fail with `code`. */
  errors(stream: string, shardId: string | undefined, code: string, count: number, now: number): void {
    const m = this.stream(stream);
    m.stream.error(code, count, now);
    if (shardId !== undefined) this.#shard(stream, m, shardId, now).error(code, count, now);
    const otel = this.#otel;
    if (otel !== undefined) {
      otel.ErrorsByCode.add(count, otel.attributes(stream, shardId, code));
      otel.AllErrors.add(count, otel.attributes(stream, shardId));
    }
  }

  expired(stream: string, shardId: string | undefined, now: number): void {
    const m = this.stream(stream);
    m.stream.UserRecordExpired.add(1, now);
    if (shardId !== undefined) this.#shard(stream, m, shardId, now).UserRecordExpired.add(1, now);
    this.#otel?.UserRecordExpired.add(1, this.#otel.attributes(stream, shardId));
  }

  /**
   * The shards of `stream` now open, by its shard map: a closed shard's entry goes once nothing was
   * recorded for it in the window, so that a stream resharded again and again (on-demand streams do it
   * themselves) does not grow the metrics for ever. Its figures stay in the stream's. Without a map
   * the producer cannot tell closed shards from open ones: any shard's entry goes after a quiet window.
   */
  openShards(stream: string, open: ReadonlySet<string>, now: number): void {
    const metrics = this.#streams.get(stream);
    if (metrics === undefined) {
      // No entry until a record comes: `metrics().streams` lists the streams the producer used.
      this.#openBeforeUse.set(stream, open);
      return;
    }
    metrics.open = open;
    this.#dropClosedShards(stream, metrics, now);
  }

  #dropClosedShards(stream: string, metrics: StreamMetrics, now: number): void {
    const open = metrics.open;
    for (const [shardId, shard] of metrics.shards) {
      if (open?.has(shardId) === true || !shard.quiet(now)) continue;
      metrics.shards.delete(shardId);
      this.#otel?.forgetShard(stream, shardId);
    }
  }

  snapshot(
    now: number,
    gauges: ReadonlyMap<string, { pending: number; oldestAgeMs: number }>,
  ): MetricsSnapshot {
    // Keyed by stream names, which may be `__proto__` or `constructor`: no prototype to clash with.
    const streams: Record<string, StreamMetricsSnapshot> = Object.create(null);
    for (const [label, metrics] of this.#streams) {
      this.#dropClosedShards(label, metrics, now);
      const gauge = gauges.get(label);
      streams[label] = metrics.snapshot(now, gauge?.pending ?? 0, gauge?.oldestAgeMs ?? 0);
    }
    return { at: now, windowMs: METRICS_WINDOW_MS, streams };
  }
}

/** An object of `entries` without a prototype: its keys come from outside (names, codes, ids). */
function keyed<T>(entries: readonly (readonly [string, T])[]): Record<string, T> {
  const out: Record<string, T> = Object.create(null);
  for (const [key, value] of entries) out[key] = value;
  return out;
}
