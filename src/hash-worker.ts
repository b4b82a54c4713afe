import { Worker } from 'node:worker_threads';

/**
 * The worker's whole program. Evaluated from this string rather than loaded from a file, so it needs
 * no path that the ESM build, the CJS build and bundlers would each resolve differently.
 *
 * It gets the ring (memory shared with the producer) once, at start. A job names where in the ring
 * its byte ranges lie, back to back, and where each ends; the answer is their MD5 digests, 16 bytes
 * each, in one buffer handed back without a copy. Jobs are answered in the order they came.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const ring = new Uint8Array(workerData.ring);
parentPort.on('message', ({ id, start, ends }) => {
  const digests = new Uint8Array(16 * ends.length);
  for (let i = 0; i < ends.length; i++) {
    digests.set(createHash('md5').update(ring.subarray(start, ends[i])).digest(), 16 * i);
    start = ends[i];
  }
  parentPort.postMessage({ id, digests: digests.buffer }, [digests.buffer]);
});
`;

/**
 * Size of the ring the bytes to hash are copied into: four jobs of 256 KiB. It is all the memory the
 * hashing takes besides the thread itself; when it is full, the caller hashes on its own thread,
 * which also keeps the two threads' shares of the work in balance.
 */
export const RING_BYTES = 1024 * 1024;

interface Job {
  readonly id: number;
  /** Where its bytes start in the ring; they are held until it is answered. */
  readonly start: number;
  readonly resolve: (digests: ArrayBuffer) => void;
  readonly reject: (error: Error) => void;
}

/**
 * One worker thread that computes MD5 digests, so that hashing leaves the event loop free.
 *
 * The thread starts on the first job. It keeps the process alive only while a job is pending: an idle
 * producer never holds Node open. If the thread dies, every pending job and every later one rejects,
 * and the caller hashes on its own thread instead.
 */
export class HashWorker {
  #worker: Worker | undefined;
  #ring: Uint8Array | undefined;
  /** Where the next job's bytes go in the ring. */
  #head = 0;
  /** Jobs the thread has not answered yet, oldest first (the order it answers them). */
  readonly #jobs: Job[] = [];
  #nextId = 0;
  #failure: Error | undefined;
  readonly #onFailure: (error: Error) => void;

  /** `onFailure`: called once if the thread dies (not when it is closed). */
  constructor(onFailure: (error: Error) => void) {
    this.#onFailure = onFailure;
  }

  /** Whether jobs may still be given: the thread has neither died nor been closed. */
  get usable(): boolean {
    return this.#failure === undefined;
  }

  /**
   * The MD5 digest of each of `ranges`, 16 bytes each, in order; or undefined, at once, when the ring
   * has no room for them (hash them yourself). The ranges are copied before this returns: the caller
   * may change them right after.
   */
  md5(ranges: readonly Uint8Array[]): Promise<Uint8Array> | undefined {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let total = 0;
    for (const range of ranges) total += range.byteLength;
    const worker = this.#start();
    const start = this.#reserve(total);
    if (start === undefined) return undefined;
    const ring = this.#ring!;
    const ends = new Uint32Array(ranges.length);
    let at = start;
    for (let i = 0; i < ranges.length; i++) {
      ring.set(ranges[i]!, at);
      at += ranges[i]!.byteLength;
      ends[i] = at;
    }
    this.#head = at;
    const id = this.#nextId++;
    return new Promise<ArrayBuffer>((resolve, reject) => {
      if (this.#jobs.length === 0) worker.ref();
      this.#jobs.push({ id, start, resolve, reject });
      worker.postMessage({ id, start, ends }, [ends.buffer]);
    }).then((digests) => new Uint8Array(digests));
  }

  /** Stops the thread; pending and later jobs reject. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#failure ??= new Error('kinesis-producer: the hashing thread was closed');
    this.#rejectAll();
    this.#ring = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  /**
   * Where `size` bytes fit in the ring, contiguous, beside the bytes of pending jobs; undefined if
   * they do not. Pending bytes run from the oldest job's start to `#head`, wrapping at the end.
   */
  #reserve(size: number): number | undefined {
    if (size > RING_BYTES) return undefined;
    const oldest = this.#jobs[0];
    if (oldest === undefined) return 0;
    const tail = oldest.start;
    const head = this.#head;
    if (head > tail) {
      if (RING_BYTES - head >= size) return head;
      return tail >= size ? 0 : undefined;
    }
    // Wrapped (or exactly full when head === tail): the free bytes are those between them.
    return tail - head >= size ? head : undefined;
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const ring = new SharedArrayBuffer(RING_BYTES);
    this.#ring = new Uint8Array(ring);
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ring } });
    worker.unref();
    worker.on('message', ({ id, digests }: { id: number; digests: ArrayBuffer }) => {
      const job = this.#jobs[0];
      if (job?.id !== id) return;
      this.#jobs.shift();
      if (this.#jobs.length === 0) {
        worker.unref();
        this.#head = 0;
      }
      job.resolve(digests);
    });
    worker.on('error', (error) => this.#died(error));
    worker.on('exit', (code) =>
      this.#died(new Error(`kinesis-producer: the hashing thread exited (code ${code})`)),
    );
    this.#worker = worker;
    return worker;
  }

  #died(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#onFailure(error);
    this.#rejectAll();
  }

  #rejectAll(): void {
    this.#worker?.unref();
    const jobs = this.#jobs.splice(0);
    for (const job of jobs) job.reject(this.#failure!);
  }
}
