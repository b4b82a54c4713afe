/**
 * Starts the null Kinesis sink (null-kinesis-server.ts) in a process of its own, so that its work is
 * not charged to the process being measured: `process.cpuUsage()` of a benchmark then counts the
 * client alone, and the sink reports its own CPU in `stats()`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { NullKinesisStats } from './null-kinesis-server.js';

export type { NullKinesisStats } from './null-kinesis-server.js';

/** A running null sink. */
export interface NullKinesis {
  /** Plain-HTTP endpoint for the SDK, e.g. http://127.0.0.1:40123 */
  readonly endpoint: string;
  /** The sink's counters: what it has acknowledged since it started, and its CPU time. */
  stats(): Promise<NullKinesisStats>;
  /** Stops the sink and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

const serverPath = fileURLToPath(new URL('./null-kinesis-server.ts', import.meta.url));
const watchdogPath = fileURLToPath(new URL('../scripts/parent-watchdog.cjs', import.meta.url));
const tsxLoader = import.meta.resolve('tsx');

/**
 * Starts a sink that serves one stream (any name) of `shards` shards splitting the hash space evenly,
 * on a free 127.0.0.1 port. The sink exits by itself if this process dies.
 */
export async function startNullKinesis(options: { readonly shards: number }): Promise<NullKinesis> {
  const child = spawn(
    process.execPath,
    ['--import', tsxLoader, '-r', watchdogPath, serverPath, String(options.shards)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = once(child, 'exit');

  // The server binds port 0 and prints the port it got: no window for another process to take it.
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline >= 0) resolve((JSON.parse(stdout.slice(0, newline)) as { port: number }).port);
    });
    exited.then(
      ([code]) => reject(new Error(`null Kinesis sink exited (${code}) before listening: ${stderr}`)),
      reject,
    );
  });
  const endpoint = `http://127.0.0.1:${port}`;

  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    async stats() {
      const response = await fetch(`${endpoint}/stats`);
      if (!response.ok) throw new Error(`null Kinesis sink: GET /stats answered ${response.status}`);
      return (await response.json()) as NullKinesisStats;
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await exited;
        }
      })();
      return stopped;
    },
  };
}
