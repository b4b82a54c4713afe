import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { readStream } from '../scripts/local-kinesis.js';
import { deaggregate } from '../src/index.js';
import { testClient, testStream } from './support/streams.js';

const root = resolve(import.meta.dirname, '..');
const client = testClient();
afterAll(() => client.destroy());

/**
 * Runs a script in a child Node and waits for it to exit (killed after 20 s, so that a Node that does
 * not exit fails the test rather than hanging it). `exitAfterMs`: how long Node took to exit after the
 * script printed `done`.
 */
async function runUntilExit(
  script: string,
  args: string[] = [],
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number | null; exitAfterMs: number; out: string; err: string; pid: number | undefined }> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  let doneAt = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (doneAt === 0 && out.includes('done')) doneAt = Date.now();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { code, exitAfterMs: Date.now() - doneAt, out, err, pid: child.pid };
}

describe('lifecycle', () => {
  it.each(['close', 'idle'] as const)(
    'node exits on its own after %s, with every record written',
    async (mode) => {
      const { streamName } = await testStream(client, 2, `exit-${mode}`);
      const { code, exitAfterMs, out, err } = await runUntilExit('test/support/exit-check.ts', [
        inject('kinesisEndpoint'),
        streamName,
        mode,
      ]);
      expect(out, err).toContain(`done ${mode} outstanding=0`);
      expect(code).toBe(0);
      // Exiting takes a moment for the child's own teardown, never a timer's worth of waiting.
      expect(exitAfterMs).toBeLessThan(2_000);
      let stored = 0;
      for (const { shard, records } of await readStream(client, streamName)) {
        for (const r of records) stored += deaggregate(r, { hashKeyRange: shard.HashKeyRange! }).length;
      }
      expect(stored).toBe(400);
    },
  );

  it.each(['writable', 'putAll', 'put'] as const)(
    'node exits on its own after %s() waited for room, without close()',
    async (mode) => {
      const { code, exitAfterMs, out, err } = await runUntilExit('test/support/idle-writer-exit-check.ts', [
        mode,
      ]);
      expect(out, err).toContain(`done ${mode} outstanding=0 stored=30`);
      expect(code).toBe(0);
      expect(exitAfterMs).toBeLessThan(2_000);
    },
  );

  it('node exits at once after close() against an endpoint that refuses connections', async () => {
    const { code, exitAfterMs, out, err } = await runUntilExit('test/support/refused-exit-check.ts');
    expect(out, err).toContain('done refused CloseTimeout');
    expect(code).toBe(0);
    // The SDK's connection timer of each refused try (1.9 s here) is not left to run out.
    expect(exitAfterMs).toBeLessThan(1_000);
  });

  it('tells every failure nobody heard before Node exits, without close()', async () => {
    const { code, out, err } = await runUntilExit('test/support/unheard-check.ts', [
      inject('kinesisEndpoint'),
      `no-such-stream-${process.pid}-${Date.now()}`,
    ]);
    expect(out, err).toContain('done outstanding=0');
    expect(code).toBe(0);
    // The first failure is told at once and the other nine are held for the next warning, whose
    // timer does not keep Node running: they are told when the process runs out of work.
    const told = [...err.matchAll(/(\d+) record\(s\) sent without a callback failed/g)].map((m) =>
      Number(m[1]),
    );
    expect(told[0]).toBe(1);
    expect(told.reduce((sum, n) => sum + n, 0)).toBe(10);
    expect(err).toContain('ResourceNotFoundException');
  });

  describe('process.exit() with records not settled', () => {
    const exitWith = (mode: string, nodeArgs: string[] = [], env: Record<string, string> = {}) =>
      runUntilExit('test/support/exit-unsettled-check.ts', [mode], nodeArgs, env);
    const told = 'The process is exiting with 5 record(s) of kinesis-producer not settled';

    it('are told on stderr as a process warning, with the default logger', async () => {
      const { code, out, err, pid } = await exitWith('default');
      expect(code).toBe(0);
      expect(out).toContain('exiting outstanding=5');
      expect(err).toContain(`(node:${pid}) KinesisProducerError: ${told}`);
      expect(err).toContain('Await producer.close() before the process exits.');
    });

    it("are told to the producer's logger", async () => {
      const { out, err } = await exitWith('logger');
      expect(out).toContain('exiting outstanding=5');
      expect(err).toContain(`logger.error {"unsettledRecords":5,"waitingPuts":0} ${told}`);
      expect(err).not.toContain('KinesisProducerError');
    });

    it('are not told where Node prints no warning, with the default logger, nor once close() settled them', async () => {
      for (const [nodeArgs, env] of [
        [['--no-warnings'], {}],
        [['--disable-warning=KinesisProducerError'], {}],
        [[], { NODE_NO_WARNINGS: '1' }],
      ] as const) {
        const quiet = await exitWith('default', [...nodeArgs], env);
        expect(quiet.out).toContain('exiting outstanding=5');
        expect(quiet.err, `${nodeArgs} ${JSON.stringify(env)}`).not.toContain('kinesis-producer not settled');
      }
      const closed = await exitWith('closed');
      expect(closed.out).toContain('exiting outstanding=0');
      expect(closed.err).not.toContain('not settled');
    });
  });
});
