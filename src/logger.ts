import { debuglog } from 'node:util';

/**
 * A pino-compatible logger: each method takes an optional context object, then a message. pino,
 * bunyan-style and console-like loggers all fit. The producer never logs credentials or record data.
 */
export interface Logger {
  debug(context: object, message: string): void;
  info(context: object, message: string): void;
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}

const debug = debuglog('kinesis-producer');

/**
 * The logger used when none is given: everything goes to `util.debuglog` (shown with
 * `NODE_DEBUG=kinesis-producer`); warnings and errors are also raised as process warnings, so they are
 * seen without configuration. The library never writes to the console itself.
 */
export const defaultLogger: Logger = {
  debug: (context, message) => debug('%s %j', message, context),
  info: (context, message) => debug('%s %j', message, context),
  warn: (context, message) => {
    debug('%s %j', message, context);
    process.emitWarning(message, { type: 'KinesisProducerWarning', detail: safeJson(context) });
  },
  error: (context, message) => {
    debug('%s %j', message, context);
    process.emitWarning(message, { type: 'KinesisProducerError', detail: safeJson(context) });
  },
};

/**
 * `logger` with each method unable to throw into the producer: a logger whose transport failed
 * would otherwise throw out of the middle of the producer's work (handling an answer, a timer) and
 * strand the records it held. What it throws is dropped: the logger was the place to tell it.
 */
export function guardedLogger(logger: Logger): Logger {
  const guard =
    (level: keyof Logger) =>
    (context: object, message: string): void => {
      try {
        logger[level](context, message);
      } catch {
        // Nowhere left to tell it.
      }
    };
  return { debug: guard('debug'), info: guard('info'), warn: guard('warn'), error: guard('error') };
}

function safeJson(value: object): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return '';
  }
}
