import type { HashWorker } from './hash-worker.js';
import type { OutboundRecord } from './pending-record.js';
import { DIGEST_BYTES, digestedPart, setAggregateDigest, writeAggregateDigest } from './record-format.js';

/**
 * From this many bytes to hash in one request on, hashing goes to the hashing thread. Below it the hop
 * to the thread and back costs more than the hashing it saves (MD5 of 64 KiB is about 90 µs here).
 */
export const OFF_THREAD_HASH_BYTES = 64 * 1024;

/** Sealed aggregates go to the hashing thread in jobs of about this many bytes. */
const JOB_BYTES = 256 * 1024;

/**
 * The MD5 trailers of aggregates. The producer builds aggregates without one (`digestDue`), so that
 * the MD5 — about a quarter of the event loop's work per 1 KiB record — can be computed on the hashing
 * thread while the event loop goes on:
 * - as aggregates are sealed (`sealed`), they are gathered into jobs of about 256 KiB for the thread,
 *   so most are hashed long before their request is due;
 * - when a request is sent (`complete`), it waits for the jobs its aggregates are in, and has the rest
 *   hashed: on the thread if there are at least 64 KiB of them, else right here.
 *
 * Without a usable hashing thread, every trailer is written right here when its request is sent;
 * while the thread's ring is full (it is behind), the aggregates of the next job are hashed here.
 */
export class AggregateDigests {
  readonly #hasher: HashWorker | undefined;
  /** Sealed aggregates not yet in a job. */
  #gathering: OutboundRecord[] = [];
  #gatheringBytes = 0;
  /** The job an aggregate is in, until its trailer is written. */
  readonly #jobOf = new WeakMap<OutboundRecord, Promise<void>>();

  constructor(hasher: HashWorker | undefined) {
    this.#hasher = hasher;
  }

  /** A new aggregate was sealed: its trailer may be computed from now on. */
  sealed(record: OutboundRecord): void {
    if (!record.digestDue || this.#hasher?.usable !== true) return;
    this.#gathering.push(record);
    this.#gatheringBytes += record.record.data.length;
    if (this.#gatheringBytes >= JOB_BYTES) {
      const records = this.#gathering;
      this.#gathering = [];
      this.#gatheringBytes = 0;
      this.#job(this.#hasher, records);
    }
  }

  /**
   * Writes every trailer `batch` still lacks. Returns undefined when that is done, or a promise that
   * fulfils once it is (it never rejects).
   */
  complete(batch: readonly OutboundRecord[]): Promise<void> | undefined {
    let jobs: Set<Promise<void>> | undefined;
    let loose: OutboundRecord[] | undefined;
    let looseBytes = 0;
    for (const record of batch) {
      if (!record.digestDue) continue;
      const job = this.#jobOf.get(record);
      if (job !== undefined) {
        if (jobs === undefined) jobs = new Set();
        jobs.add(job);
      } else {
        if (loose === undefined) loose = [];
        loose.push(record);
        looseBytes += record.record.data.length;
      }
    }
    if (loose !== undefined) {
      const hasher = this.#hasher;
      if (hasher?.usable === true && looseBytes >= OFF_THREAD_HASH_BYTES) {
        const job = this.#job(hasher, loose);
        if (job !== undefined) {
          if (jobs === undefined) jobs = new Set();
          jobs.add(job);
        }
      } else {
        hashHere(loose);
      }
      // The loose ones are taken care of: no job of gathered records may copy them again.
      if (this.#gathering.length > 0) {
        this.#gathering = this.#gathering.filter((r) => r.digestDue && !this.#jobOf.has(r));
        this.#gatheringBytes = 0;
        for (const r of this.#gathering) this.#gatheringBytes += r.record.data.length;
      }
    }
    if (jobs === undefined) return undefined;
    return Promise.all(jobs).then(() => undefined);
  }

  /**
   * Has the thread hash `records`; should it fail, they are hashed here. Never rejects. Undefined
   * when the thread's ring is full: then they were hashed here, at once.
   */
  #job(hasher: HashWorker, records: readonly OutboundRecord[]): Promise<void> | undefined {
    const digested = hasher.md5(records.map((record) => digestedPart(record.record.data)));
    if (digested === undefined) {
      hashHere(records);
      return undefined;
    }
    const job = digested.then(
      (digests) => {
        for (let i = 0; i < records.length; i++) {
          const record = records[i]!;
          this.#jobOf.delete(record);
          if (!record.digestDue) continue;
          setAggregateDigest(record.record.data, digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES));
          record.digestDue = false;
        }
      },
      () => {
        for (const record of records) this.#jobOf.delete(record);
        hashHere(records);
      },
    );
    for (const record of records) this.#jobOf.set(record, job);
    return job;
  }
}

/** Writes the trailers still due of `records`, on this thread. */
function hashHere(records: readonly OutboundRecord[]): void {
  for (const record of records) {
    if (!record.digestDue) continue;
    writeAggregateDigest(record.record.data);
    record.digestDue = false;
  }
}
