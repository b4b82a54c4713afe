/** The part of an eventemitter3 emitter {@link emitToEach} uses: both are its public API. */
export interface ListenerList<Event extends string, Args extends unknown[]> {
  listeners(event: Event): ((...args: Args) => void)[];
  removeListener(event: Event, fn: (...args: Args) => void, context: undefined, once: true): unknown;
}

/**
 * Emits `event` with `args` as `emitter.emit` would — to each listener in the order they were added,
 * those added with `once` removed first, `this` the emitter — except that a listener that throws is
 * handed to `onThrow` and the listeners after it still run. `emit` (eventemitter3's, like Node's)
 * stops at the first listener that throws, so one buggy listener would keep every later one from
 * hearing a failure, and a `'drain'` that the producer's own Writable waits for would never reach
 * it: the stream would wait for good.
 */
export function emitToEach<Event extends string, Args extends unknown[]>(
  emitter: ListenerList<Event, Args>,
  event: Event,
  args: Args,
  onThrow: (error: unknown) => void,
): void {
  // A copy, as `emit` takes: a listener that adds or removes others changes only later emissions.
  for (const listener of emitter.listeners(event)) {
    // Removes it only if it was added with `once` (and then every `once` entry of it).
    emitter.removeListener(event, listener, undefined, true);
    try {
      listener.apply(emitter, args);
    } catch (error) {
      onThrow(error);
    }
  }
}

/**
 * What the log says of an error an app's callback or listener threw: its message, and its stack,
 * which is what points at the app's own code.
 */
export function thrownByApp(error: unknown): { error: string; stack?: string } {
  const stack = error instanceof Error ? error.stack : undefined;
  return stack === undefined ? { error: String(error) } : { error: String(error), stack };
}
