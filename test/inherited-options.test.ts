import { describe, expect, it } from 'vitest';
import { InvalidOptionError, KinesisProducer } from '../src/index.js';
import { FakeKinesis } from './support/fake-kinesis.js';
import { memoryLogger } from './support/memory-logger.js';

/**
 * Options an object inherits (a config class's getters, Object.create(defaults)) are taken and checked
 * as its own are, each read once by its name.
 */
describe('options inherited from a prototype', () => {
  it('a config class: recordTtlMs from a getter applies (or the producer says it was ignored)', async () => {
    const fake = new FakeKinesis(1);
    fake.onPut = () => 'hang'; // the stream never answers PutRecords
    const { logger, lines } = memoryLogger();
    class Config {
      readonly streamName = 'test';
      readonly client = fake.client;
      readonly logger = logger;
      get recordTtlMs() {
        return 200;
      }
    }
    const producer = new KinesisProducer(new Config());
    const outcome = await Promise.race([
      producer.put({ partitionKey: 'k', data: 'x' }).then(
        () => 'written',
        (e: { code: string }) => e.code,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending after 2 s'), 2000)),
    ]);
    await producer.close({ timeoutMs: 10 }).catch(() => {});
    const told = lines.some((l) => l.level === 'warn' && l.message.includes('recordTtlMs'));
    expect(told || outcome === 'Expired', `outcome: ${String(outcome)}, warned: ${told}`).toBe(true);
  });

  it('a config class: aggregation: false from a getter is honoured (consumers that cannot deaggregate)', async () => {
    const fake = new FakeKinesis(1);
    class Config {
      readonly streamName = 'test';
      readonly client = fake.client;
      readonly maxBufferedTimeMs = 20;
      get aggregation() {
        return false;
      }
    }
    const producer = new KinesisProducer(new Config());
    const results = await Promise.all([
      producer.put({ partitionKey: 'a', data: 'one' }),
      producer.put({ partitionKey: 'b', data: 'two' }),
    ]);
    await producer.close();
    expect(results.map((r) => r.aggregated)).toEqual([false, false]);
  });

  it('reads each option once: a getter that would answer differently later changes nothing', () => {
    const fake = new FakeKinesis(1);
    const reads: Record<string, number> = {};
    const read = (name: string) => {
      reads[name] = (reads[name] ?? 0) + 1;
    };
    class Config {
      readonly streamName = 'test';
      get client() {
        read('client');
        return fake.client;
      }
      get recordTtlMs() {
        read('recordTtlMs');
        return 2_000;
      }
      get aggregation() {
        read('aggregation');
        return false;
      }
    }
    const producer = new KinesisProducer(new Config());
    void producer.close();
    expect(reads).toEqual({ client: 1, recordTtlMs: 1, aggregation: 1 });
  });

  it('an inherited invalid value is refused like an own one', () => {
    const fake = new FakeKinesis(1);
    const own = { streamName: 'test', client: fake.client, maxConnections: 'lots' };
    expect(() => new KinesisProducer(own as never)).toThrow(InvalidOptionError);
    const inherited = Object.assign(Object.create({ maxConnections: 'lots' }), {
      streamName: 'test',
      client: fake.client,
    });
    expect(() => new KinesisProducer(inherited)).toThrow(InvalidOptionError);
  });
});
