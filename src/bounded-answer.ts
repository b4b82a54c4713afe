import { Readable, Transform } from 'node:stream';

/**
 * The most of a PutRecords answer read: 500 entries of a few hundred bytes each fit in it many times.
 * An answer that goes on past it comes from something that is not Kinesis (a proxy gone wrong) and is
 * abandoned; the SDK would otherwise hold all of it in memory, gigabytes within a request timeout.
 */
export const MAX_PUT_RECORDS_ANSWER_BYTES = 1024 * 1024;

/** The most of a metadata answer read: a ListShards page of 10,000 shards is about 4 MB. */
export const MAX_METADATA_ANSWER_BYTES = 16 * 1024 * 1024;

/** The code of the error a call gets when its answer is larger than its bound. */
export const RESPONSE_TOO_LARGE = 'ResponseTooLarge';

/** The part of an SDK command this module touches. */
interface CommandWithStack {
  readonly middlewareStack: {
    addRelativeTo(
      middleware: never,
      options: { relation: 'after'; toMiddleware: string; name: string },
    ): void;
  };
}

type Handler = (args: object) => Promise<{ response?: unknown }>;

/** How much of an answer's body is kept to quote, should the SDK fail to parse it (see answerBodyStart). */
const KEPT_BODY_BYTES = 512;

/** The property of a bounded answer holding the start of its body as read so far. */
const BODY_START = Symbol('kinesisProducerBodyStart');

/**
 * The start of the body of the answer an SDK error came with (its `$response`), as far as it was
 * read: what a page that is not JSON said. Undefined for an answer {@link withBoundedAnswer} did not
 * see, or with no body read.
 */
export function answerBodyStart(error: unknown): string | undefined {
  try {
    const response = (error as { $response?: { [BODY_START]?: () => string } } | null)?.$response;
    const start = response?.[BODY_START]?.();
    return start === undefined || start === '' ? undefined : start;
  } catch {
    return undefined;
  }
}

/**
 * Has `command` read at most `maxBytes` of its answer's body: past that, the body ends in an error
 * with code {@link RESPONSE_TOO_LARGE} and its connection is closed. Only a command the SDK sends
 * (a stand-in client without a middleware stack is left alone).
 */
export function withBoundedAnswer<C>(command: C, maxBytes: number): C {
  const stack = (command as Partial<CommandWithStack>).middlewareStack;
  if (stack === undefined) return command;
  const bound = (next: Handler) => async (args: object) => {
    const result = await next(args);
    const response = result.response as { body?: unknown } | undefined;
    if (response !== undefined && response.body instanceof Readable) {
      const kept: Buffer[] = [];
      response.body = bounded(response.body, maxBytes, kept);
      Object.defineProperty(response, BODY_START, {
        value: () => Buffer.concat(kept).toString('utf8'),
        enumerable: false,
      });
    }
    return result;
  };
  // After the deserializer: called by it, so this sees the raw answer before the deserializer reads it.
  stack.addRelativeTo(bound as never, {
    relation: 'after',
    toMiddleware: 'deserializerMiddleware',
    name: 'kinesisProducerBoundedAnswer',
  });
  return command;
}

/**
 * `body`, ending in an error once more than `maxBytes` have come; `body` is destroyed then. Its first
 * bytes (up to {@link KEPT_BODY_BYTES}) are pushed onto `kept`.
 */
function bounded(body: Readable, maxBytes: number, kept: Buffer[]): Readable {
  let bytes = 0;
  const limited = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (bytes < KEPT_BODY_BYTES) kept.push(chunk.subarray(0, KEPT_BODY_BYTES - bytes));
      bytes += chunk.length;
      if (bytes <= maxBytes) {
        done(null, chunk);
        return;
      }
      body.unpipe(limited);
      body.destroy();
      done(
        Object.assign(
          new Error(`The answer's body is over ${maxBytes} bytes: it is not Kinesis's, and was abandoned.`),
          { code: RESPONSE_TOO_LARGE },
        ),
      );
    },
  });
  body.once('error', (error) => limited.destroy(error));
  return body.pipe(limited);
}
