/** Hears how a call of the client settled: with its answer (`ok`), or with its error. */
export type SettleListener = (ok: boolean, value: unknown) => void;

/**
 * A call of the client's `send`, as the one who made it follows it. The client may never settle a
 * call: a stage before the HTTP exchange may not hear the abort, and a credential provider stuck for
 * good keeps every request waiting on the one promise the SDK memoizes. Whatever such a call's
 * handlers reach then stays in memory for good. They reach this object alone, and through it its
 * listener, which the caller drops (or swaps for a small one) once it stops waiting: so a closed
 * producer, with its sender, shard maps and pipelines, can still be collected.
 */
export class ClientCall {
  #listener: SettleListener | undefined;
  #settled = false;

  /** Follows `answer`, what the client's `send` returned; throws if that has no `then`. */
  constructor(answer: PromiseLike<unknown>, listener: SettleListener) {
    this.#listener = listener;
    follow(answer, this);
  }

  /** Whether the client has settled the call. */
  get settled(): boolean {
    return this.#settled;
  }

  /** From now on `listener` hears how the call settles, instead of the one before; none if undefined. */
  listen(listener: SettleListener | undefined): void {
    this.#listener = listener;
  }

  /** The client settled the call. */
  settle(ok: boolean, value: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.(ok, value);
  }
}

/**
 * Has `answer` settle `call`. Apart from the constructor, so that the handlers hold `call` alone, not
 * the scope they were made in.
 */
function follow(answer: PromiseLike<unknown>, call: ClientCall): void {
  answer.then(
    (value) => call.settle(true, value),
    (error: unknown) => call.settle(false, error),
  );
}

/**
 * `reason`, with its stack trace written out: what to abort a call of the client with. A call that
 * never settles keeps its abort signal, and the signal its reason. Until an error's stack is read, V8
 * keeps the function and receiver of every frame the error was made in, and through them whatever
 * those reach: the sender, a shard map, the producer (see {@link ClientCall}).
 */
export function abortReason<R>(reason: R): R {
  if (reason instanceof Error) void reason.stack;
  return reason;
}
