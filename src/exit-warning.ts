import { writeSync } from 'node:fs';
import { defaultLogger, type Logger } from './logger.js';

/** What the warning at exit needs of a producer: how many of its records have no answer yet. */
export interface Unsettled {
  readonly logger: Logger;
  /** Records taken and not settled. */
  readonly records: number;
  /** Puts and writes waiting for room, not yet taken. */
  readonly waiting: number;
}

/**
 * Producers holding records without an answer. Node's `'exit'` (`process.exit()`, an uncaught
 * exception) ends the process with no more timers or I/O: those records never settle, and some may
 * have been written. Each such producer says so then, so that no record is lost silently. One listener
 * for all producers, there only while one holds any.
 */
const holding = new Set<Unsettled>();

function tellAtExit(): void {
  for (const producer of holding) {
    const { records, waiting } = producer;
    if (records === 0 && waiting === 0) continue;
    const queued = waiting > 0 ? `, and ${waiting} put(s) still waiting for room,` : '';
    logAtExit(
      producer.logger,
      { unsettledRecords: records, waitingPuts: waiting },
      `The process is exiting with ${records} record(s) of kinesis-producer not settled${queued}: they get no answer, and those sent may have been written. Await producer.close() before the process exits.`,
    );
  }
}

/** `producer` holds records: it tells them at exit unless {@link releaseAtExit} comes first. */
export function holdAtExit(producer: Unsettled): void {
  if (holding.size === 0) process.on('exit', tellAtExit);
  holding.add(producer);
}

/** `producer` holds no record any more. */
export function releaseAtExit(producer: Unsettled): void {
  if (holding.delete(producer) && holding.size === 0) process.off('exit', tellAtExit);
}

/**
 * Logs as the process exits. The default logger raises process warnings, which Node prints a tick
 * later, and no tick comes after `'exit'`: its message is written to stderr now, as Node prints a
 * warning, unless Node would not print it (`--no-warnings`, `NODE_NO_WARNINGS=1`,
 * `--disable-warning=KinesisProducerError`).
 */
function logAtExit(logger: Logger, context: object, message: string): void {
  logger.error(context, message);
  if (logger !== defaultLogger || warningsOff()) return;
  try {
    writeSync(2, `(node:${process.pid}) KinesisProducerError: ${message}\n`);
  } catch {
    // stderr closed: nowhere left to tell it.
  }
}

function warningsOff(): boolean {
  if (process.env.NODE_NO_WARNINGS === '1') return true;
  const off = (args: readonly string[]) =>
    args.some(
      (arg, i) =>
        arg === '--no-warnings' ||
        arg === '--disable-warning=KinesisProducerError' ||
        (arg === '--disable-warning' && args[i + 1] === 'KinesisProducerError'),
    );
  return off(process.execArgv) || off((process.env.NODE_OPTIONS ?? '').split(/\s+/));
}
