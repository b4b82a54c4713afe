import { Worker } from 'node:worker_threads';

/**
 * The worker's whole program. Evaluated from this string rather than loaded from a file, so it needs
 * no path that the ESM build, the CJS build and bundlers would each resolve differently.
 *
 * A job is a shared buffer holding byte ranges back to back, and where each range ends; the answer is
 * their MD5 digests, 16 bytes each, in one buffer handed back without a copy.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, bytes, ends }) => {
  const input = new Uint8Array(bytes);
  const digests = new Uint8Array(16 * ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    digests.set(createHash('md5').update(input.subarray(start, ends[i])).digest(), 16 * i);
    start = ends[i];
  }
  parentPort.postMessage({ id, digests: digests.buffer }, [digests.buffer]);
});
`;

interface Job {
  readonly resolve: (digests: ArrayBuffer) => void;
  readonly reject: (error: Error) => void;
}

/** Idle shared buffers kept for later jobs to copy into. */
const SPARE_BUFFERS = 2;

/**
 * One worker thread that computes MD5 digests, so that hashing leaves the event loop free.
 *
 * The thread starts on the first job. It keeps the process alive only while a job is pending: an idle
 * producer never holds Node open. If the thread dies, every pending job and every later one rejects,
 * and the caller hashes on its own thread instead.
 */
export class HashWorker {
  #worker: Worker | undefined;
  #failure: Error | undefined;
  readonly #jobs = new Map<number, Job>();
  #nextId = 0;
  /** Shared buffers of finished jobs, for the next ones to copy into. */
  readonly #spare: SharedArrayBuffer[] = [];
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
   * The MD5 digest of each of `ranges`, 16 bytes each, in order. The ranges are copied, before this
   * returns, into memory shared with the thread: the caller may change them right after.
   */
  md5(ranges: readonly Uint8Array[]): Promise<Uint8Array> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let total = 0;
    for (const range of ranges) total += range.byteLength;
    const bytes = this.#sharedBuffer(total);
    const into = new Uint8Array(bytes);
    const ends = new Uint32Array(ranges.length);
    let at = 0;
    for (let i = 0; i < ranges.length; i++) {
      into.set(ranges[i]!, at);
      at += ranges[i]!.byteLength;
      ends[i] = at;
    }
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise<ArrayBuffer>((resolve, reject) => {
      if (this.#jobs.size === 0) worker.ref();
      this.#jobs.set(id, { resolve, reject });
      worker.postMessage({ id, bytes, ends }, [ends.buffer]);
    }).then((digests) => {
      if (this.#spare.length < SPARE_BUFFERS) this.#spare.push(bytes);
      return new Uint8Array(digests);
    });
  }

  /** Stops the thread; pending and later jobs reject. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#failure ??= new Error('kinesis-producer: the hashing thread was closed');
    this.#rejectAll();
    this.#spare.length = 0;
    if (worker !== undefined) await worker.terminate();
  }

  /** A shared buffer of at least `size` bytes: a spare one if large enough. */
  #sharedBuffer(size: number): SharedArrayBuffer {
    while (this.#spare.length > 0) {
      const buffer = this.#spare.pop()!;
      if (buffer.byteLength >= size) return buffer;
    }
    return new SharedArrayBuffer(size);
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', ({ id, digests }: { id: number; digests: ArrayBuffer }) => {
      const job = this.#jobs.get(id);
      if (job === undefined) return;
      this.#jobs.delete(id);
      if (this.#jobs.size === 0) worker.unref();
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
    const jobs = [...this.#jobs.values()];
    this.#jobs.clear();
    for (const job of jobs) job.reject(this.#failure!);
  }
}
