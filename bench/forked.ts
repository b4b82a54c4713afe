/**
 * Benchmark scenarios that need a producer in a process of its own: for its memory figures alone
 * (memory.ts), or several producers at once (shard-limit.ts). The case's child forks the script, may
 * tell it to stop, and gets one result back over IPC.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const tsxLoader = import.meta.resolve('tsx');

/** A forked scenario script. */
export interface Forked<T> {
  /** The script's one result; rejects if it exits without one. */
  readonly result: Promise<T>;
  /** Asks the script to stop its work and report. */
  stop(): void;
}

/** What a forked script sends back: its result, or why it failed. */
type ForkedMessage<T> =
  | { readonly ok: true; readonly result: T }
  | { readonly ok: false; readonly error: string };

/** Forks `script` (a URL of a .ts file) with `args`, under tsx and --expose-gc. */
export function forkScript<T>(script: URL, args: readonly string[]): Forked<T> {
  const child = fork(fileURLToPath(script), args, {
    execArgv: ['--import', tsxLoader, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  let message: ForkedMessage<T> | undefined;
  child.on('message', (m) => {
    message = m as ForkedMessage<T>;
  });
  const result = once(child, 'exit').then(([code]) => {
    if (message?.ok === true) return message.result;
    throw new Error(`${script.pathname} failed: ${message?.error ?? `exited with ${code}`}\n${stderr}`);
  });
  return {
    result,
    stop: () => {
      if (child.connected) child.send('stop');
    },
  };
}

/**
 * The script side: runs `work` with a signal that aborts when the parent says stop, sends its result
 * (or error) to the parent and exits. The script exits at once if the parent goes away; started by
 * hand, it prints its result.
 */
export function runForked<T>(work: (stop: AbortSignal) => Promise<T>): void {
  // If the case's child dies, the IPC channel closes: stop rather than keep loading a shared machine.
  process.on('disconnect', () => process.exit(1));
  const stop = new AbortController();
  process.on('message', (m) => {
    if (m === 'stop') stop.abort();
  });
  void work(stop.signal).then(
    (result) => send({ ok: true, result }, 0),
    (error: unknown) =>
      send({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 1),
  );
}

function send<T>(message: ForkedMessage<T>, code: number): void {
  // Exit rather than wait for the event loop: a producer's idle sockets may still be open.
  const exit = () => process.exit(code);
  // Started by hand rather than forked: print the message instead.
  if (process.send === undefined) process.stdout.write(`${JSON.stringify(message, null, 2)}\n`, exit);
  else process.send(message, exit);
}
