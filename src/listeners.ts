import { EventEmitter } from 'eventemitter3';
import { describeThrown } from './errors.js';

/** One listener as eventemitter3 keeps it: its function, the `this` it is called with, and `once`. */
interface ListenerEntry {
  // biome-ignore lint/suspicious/noExplicitAny: listeners of any event, called with that event's arguments.
  readonly fn: (...args: any[]) => void;
  readonly context: unknown;
  readonly once: boolean;
}

/** The part of an eventemitter3 emitter {@link emitToEach} uses. */
export interface ListenerList<Event extends string, Args extends unknown[]> {
  emit(event: Event, ...args: Args): boolean;
  removeListener(event: Event, fn: (...args: Args) => void, context: undefined, once: true): unknown;
}

/**
 * Emits `event` with `args` as `emitter.emit` does — each listener in the order added, with the
 * context it was added with, one added with `once` removed before it runs — except that a listener
 * that throws is handed to `onThrow` and the listeners after it still run. `emit` (eventemitter3's,
 * like Node's) stops at the first listener that throws, so one buggy listener would keep every later
 * one from hearing a failure, and a `'drain'` that the producer's own Writable waits for would never
 * reach it: the stream would wait for good.
 *
 * It reads the listener entries eventemitter3 keeps (`_events`, unchanged since its version 1), since
 * its public `listeners()` leaves out their context and `once`. Should they ever not be there, it
 * falls back to `emit`, with a throw handed to `onThrow`.
 */
export function emitToEach<Event extends string, Args extends unknown[]>(
  emitter: ListenerList<Event, Args>,
  event: Event,
  args: Args,
  onThrow: (error: unknown) => void,
): void {
  const entries = entriesOf(emitter, event);
  if (entries === undefined) {
    try {
      emitter.emit(event, ...args);
    } catch (error) {
      onThrow(error);
    }
    return;
  }
  // A copy, as `emit` takes: a listener that adds or removes others changes only later emissions.
  for (const entry of entries) {
    if (entry.once) emitter.removeListener(event, entry.fn, undefined, true);
    try {
      entry.fn.apply(entry.context, args);
    } catch (error) {
      onThrow(error);
    }
  }
}

/** A copy of the listener entries of `event`, or undefined if the emitter does not keep them so. */
function entriesOf(emitter: object, event: string): readonly ListenerEntry[] | undefined {
  const events = (emitter as { _events?: unknown })._events;
  if (typeof events !== 'object' || events === null) return undefined;
  const key = typeof EventEmitter.prefixed === 'string' ? EventEmitter.prefixed + event : event;
  const held = (events as Record<string, unknown>)[key];
  if (held === undefined) return [];
  const entries = Array.isArray(held) ? held.slice() : [held];
  const wellFormed = entries.every(
    (entry) =>
      typeof entry === 'object' && entry !== null && typeof (entry as ListenerEntry).fn === 'function',
  );
  return wellFormed ? (entries as ListenerEntry[]) : undefined;
}

/**
 * What the log says of an error an app's callback or listener threw: its message, and its stack,
 * which is what points at the app's own code. Never throws, whatever was thrown.
 */
export function thrownByApp(error: unknown): { error: string; stack?: string } {
  let stack: unknown;
  try {
    stack = error instanceof Error ? error.stack : undefined;
  } catch {
    stack = undefined;
  }
  const text = describeThrown(error);
  return typeof stack === 'string' ? { error: text, stack } : { error: text };
}
