import { createHash, createHmac, webcrypto } from 'node:crypto';

/**
 * Below this many bytes a hash is computed on the calling thread: handing it to another costs more
 * than it saves. A PutRecords body of the producer's is 64 KiB to 5 MiB once records flow, a
 * request of the other calls a few hundred bytes, and the signing key's HMACs a few dozen.
 */
export const THREAD_POOL_MIN_BYTES = 64 * 1024;

/** What the SDK hands a hash: its `SourceData`. */
type HashInput = string | ArrayBuffer | ArrayBufferView;

function bytesOf(data: HashInput): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/**
 * The SHA-256 (and HMAC-SHA-256) the producer's own client signs requests with: the SDK's `sha256`
 * option. SigV4 hashes every request body, and a PutRecords body is up to 5 MiB of base64, so on
 * the producer's main thread that hash was 6.5% of its CPU with 100 B records and 12% with 1 KiB
 * ones, where the main thread is what limits its throughput. Here a body of 64 KiB or more is
 * hashed on libuv's thread pool (WebCrypto's `digest`, which copies the bytes and hashes them
 * there), while the main thread goes on; smaller inputs, and every HMAC, are hashed at once, as the
 * SDK's own class does. The digest is the same, so the request on the wire is the same.
 *
 * Unlike a streaming hash it keeps the chunks it is given until `digest()`: the SDK's signer calls
 * `update` once with the body and `digest` right after, while it holds the body unchanged.
 */
export class ThreadPoolSha256 {
  readonly digestLength = 32;
  readonly #secret: Uint8Array | undefined;
  #chunks: Uint8Array[] = [];
  #bytes = 0;

  /** With `secret`, an HMAC keyed by it. */
  constructor(secret?: HashInput) {
    this.#secret = secret === undefined ? undefined : bytesOf(secret);
  }

  update(data: HashInput): void {
    const bytes = bytesOf(data);
    this.#chunks.push(bytes);
    this.#bytes += bytes.byteLength;
  }

  async digest(): Promise<Uint8Array> {
    const chunks = this.#chunks;
    if (this.#secret === undefined && this.#bytes >= THREAD_POOL_MIN_BYTES) {
      const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      return new Uint8Array(await webcrypto.subtle.digest('SHA-256', whole));
    }
    const hash = this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
    for (const chunk of chunks) hash.update(chunk);
    const digest = hash.digest();
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  }

  reset(): void {
    this.#chunks = [];
    this.#bytes = 0;
  }
}
