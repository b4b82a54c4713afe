import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AggregateBuilder } from '../src/aggregator.js';
import type { OutboundRecord, PendingRecord } from '../src/pending-record.js';
import { ShardBuffer } from '../src/shard-buffer.js';

/** Only `sizeBytes` and `expiresAt` are read by the queue; the name tells records apart in the assertions. */
function record(name: string, sizeBytes = 10, expiresAt = 0): OutboundRecord {
  return { name, sizeBytes, expiresAt } as unknown as OutboundRecord;
}

function newBuffer(): ShardBuffer {
  return new ShardBuffer(
    'shardId-0',
    'shardId-0',
    new AggregateBuilder<PendingRecord>(51_200, 500, () => '0'),
  );
}

const names = (records: Iterable<OutboundRecord>) =>
  [...records].map((r) => (r as unknown as { name: string }).name);

describe('ShardBuffer expiry', () => {
  it('finds each record behind a younger head at its expiry, looking at a few records each time, not the whole queue', () => {
    const buffer = newBuffer();
    let reads = 0;
    const counted = (name: string, expiresAt: number) =>
      ({
        name,
        sizeBytes: 1,
        get expiresAt() {
          reads++;
          return expiresAt;
        },
      }) as unknown as OutboundRecord;
    // 2,000 records expiring 1 ms apart, behind a retry that expires after them all.
    const n = 2_000;
    for (let i = 0; i < n; i++) buffer.push(counted(`b${i}`, 1_000 + i));
    buffer.pushFront(counted('young', 1e9));
    reads = 0;
    const expired: string[] = [];
    // What StreamPipeline.tick does, each millisecond: the head first, then the records behind it.
    for (let now = 1_000; now < 1_000 + n; now++) {
      for (let head = buffer.peek(); head !== undefined && head.expiresAt <= now; head = buffer.peek())
        buffer.shift();
      if (buffer.nextExpiry <= now) {
        buffer.replaceExpired(now, (record) => {
          expired.push(`${names([record])[0]}@${now}`);
          return [];
        });
      }
      expect(buffer.nextExpiry).toBe(now + 1 < 1_000 + n ? now + 1 : 1e9);
    }
    expect(expired).toEqual(Array.from({ length: n }, (_, i) => `b${i}@${1_000 + i}`));
    expect(names(buffer.records())).toEqual(['young']);
    expect(reads).toBeLessThan(20 * n);
  });
});

describe('ShardBuffer queue', () => {
  it('puts records back at the head, the last one put back first, before newer records', () => {
    const buffer = newBuffer();
    buffer.push(record('a'));
    buffer.push(record('b'));
    buffer.push(record('c'));
    expect(names([buffer.shift()!])).toEqual(['a']);
    // A retry of two records is put back newest first, so that the oldest ends up at the head.
    buffer.pushFront(record('r2'));
    buffer.pushFront(record('r1'));
    buffer.pushFront(record('r0'));
    buffer.push(record('d'));
    expect(names(buffer.records())).toEqual(['r0', 'r1', 'r2', 'b', 'c', 'd']);
    expect(buffer.queued).toBe(6);
    expect(buffer.queuedBytes).toBe(60);
    expect(names([buffer.peek()!])).toEqual(['r0']);
    expect(names([buffer.shift()!, buffer.shift()!])).toEqual(['r0', 'r1']);
    expect(names(buffer.drain())).toEqual(['r2', 'b', 'c', 'd']);
    expect(buffer.queued).toBe(0);
    expect(buffer.queuedBytes).toBe(0);
    expect(buffer.empty).toBe(true);
    expect(buffer.shift()).toBeUndefined();
  });

  it('keeps its order when a long queue is compacted after many shifts', () => {
    const buffer = newBuffer();
    for (let i = 0; i < 3000; i++) buffer.push(record(`q${i}`));
    for (let i = 0; i < 1600; i++) expect(names([buffer.shift()!])).toEqual([`q${i}`]);
    buffer.pushFront(record('back1'));
    buffer.pushFront(record('back0'));
    const left = names(buffer.records());
    expect(left.slice(0, 3)).toEqual(['back0', 'back1', 'q1600']);
    expect(left.at(-1)).toBe('q2999');
    expect(buffer.queued).toBe(1402);
  });

  it('behaves as an array with unshift, push and shift, in any order of operations', () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('push' as const), at: fc.nat(100) }), weight: 10 },
      { arbitrary: fc.record({ kind: fc.constant('pushFront' as const), at: fc.nat(100) }), weight: 5 },
      { arbitrary: fc.record({ kind: fc.constant('shift' as const), at: fc.constant(0) }), weight: 8 },
      { arbitrary: fc.record({ kind: fc.constant('drain' as const), at: fc.constant(0) }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant('replaceExpired' as const), at: fc.nat(100) }), weight: 2 },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
        const buffer = newBuffer();
        let model: OutboundRecord[] = [];
        let made = 0;
        const earliest = () => Math.min(...model.map((r) => r.expiresAt));
        for (const { kind, at } of ops) {
          if (kind === 'replaceExpired') {
            // An expired record gives way to none, or to a fresh one expiring later (its records still
            // alive): in its place, in the queue as in the model.
            const renewed = new Map<OutboundRecord, OutboundRecord[]>();
            buffer.replaceExpired(at, (expired) => {
              expect(expired.expiresAt).toBeLessThanOrEqual(at);
              const later = (n: number) => record(`r${made}.${n}`, 3, at + 1 + ((made * (n + 1)) % 5));
              const fresh = [[], [later(0)], [later(0), later(1)]][made % 3]!;
              made++;
              renewed.set(expired, fresh);
              return fresh;
            });
            model = model.flatMap((r) => (r.expiresAt > at ? [r] : renewed.get(r)!));
          } else if (kind === 'push' || kind === 'pushFront') {
            const next = record(`r${made}`, (made % 7) + 1, at);
            made++;
            if (kind === 'push') {
              buffer.push(next);
              model.push(next);
            } else {
              buffer.pushFront(next);
              model.unshift(next);
            }
          } else if (kind === 'shift') {
            expect(buffer.shift()).toBe(model.shift());
          } else {
            expect(buffer.drain()).toEqual(model.splice(0));
          }
          expect(buffer.peek()).toBe(model[0]);
          expect(buffer.nextExpiry).toBe(earliest());
          expect(buffer.queued).toBe(model.length);
          expect(buffer.queuedBytes).toBe(model.reduce((sum, r) => sum + r.sizeBytes, 0));
        }
        expect([...buffer.records()]).toEqual(model);
      }),
      { numRuns: 200 },
    );
  });
});
