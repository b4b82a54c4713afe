import { afterEach, vi } from 'vitest';
import { KinesisProducer, type KinesisProducerOptions } from '../../src/index.js';
import type { FakeKinesis } from './fake-kinesis.js';

/**
 * Producers for unit tests, writing to stream `test` through the fake's client. Every producer made
 * is closed after each test (its timers run out under fake timers), held fake calls are let go, and
 * mocks and timers are restored.
 */
export function producersOn(
  fake: () => FakeKinesis,
  defaults: Partial<KinesisProducerOptions> = {},
): (options?: Partial<KinesisProducerOptions>) => KinesisProducer {
  const producers: KinesisProducer[] = [];
  afterEach(async () => {
    fake().release();
    for (const p of producers.splice(0)) {
      const closed = p.close();
      if (vi.isFakeTimers()) await vi.runAllTimersAsync();
      await closed;
    }
    vi.restoreAllMocks();
    vi.useRealTimers();
  });
  return (options = {}) => {
    const p = new KinesisProducer({ streamName: 'test', client: fake().client, ...defaults, ...options });
    producers.push(p);
    return p;
  };
}
