import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AggregateDigests } from '../src/aggregate-digests.js';
import { type AggregatableRecord, AggregateBuilder } from '../src/aggregator.js';
import { HashWorker, RING_BYTES } from '../src/hash-worker.js';
import { deaggregate } from '../src/index.js';
import { PartitionKeyCache } from '../src/key-cache.js';
import { OutboundRecord, type PendingRecord } from '../src/pending-record.js';
import { hasMagic } from '../src/record-format.js';
import { FakeKinesis } from './support/fake-kinesis.js';
import { producersOn } from './support/producers.js';

let fake: FakeKinesis;
const producer = producersOn(() => fake);

/** Every entry's bytes as they were when client.send was called, copied there. */
let sent: { partitionKey: string; data: Buffer }[];

beforeEach(() => {
  fake = new FakeKinesis(4);
  sent = [];
  fake.onPut = (call) => {
    for (const e of call.entries) sent.push({ partitionKey: e.PartitionKey!, data: Buffer.from(e.Data!) });
    return undefined;
  };
});

afterEach(() => vi.restoreAllMocks());

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest();

/** Checks every aggregate sent ends with the MD5 of its body, and returns the user records inside. */
function readBack(): { partitionKey: string; data: string }[] {
  const users: { partitionKey: string; data: string }[] = [];
  for (const { partitionKey, data } of sent) {
    if (hasMagic(data)) {
      expect(data.subarray(-16).equals(md5(data.subarray(4, -16)))).toBe(true);
    }
    for (const u of deaggregate({ partitionKey, data })) {
      users.push({ partitionKey: u.partitionKey, data: Buffer.from(u.data).toString('hex') });
    }
  }
  return users;
}

/** 3,000 records of 1 KiB over 200 keys: about 3 MB, so jobs for the hashing thread. */
function records() {
  return Array.from({ length: 3000 }, (_, i) => ({
    partitionKey: `key-${i % 200}`,
    data: randomBytes(1024),
  }));
}

const sorted = (list: { partitionKey: string; data: string }[]) =>
  [...list].sort((a, b) => (a.data < b.data ? -1 : a.data > b.data ? 1 : 0));

describe('MD5 of aggregates off the event loop', () => {
  it('sends aggregates hashed on the thread with the MD5 that consumers check', async () => {
    const md5Jobs = vi.spyOn(HashWorker.prototype, 'md5');
    const p = producer();
    const input = records();
    for (const r of input) p.send(r);
    await p.flush();
    // The thread did the hashing, for aggregates of about 50 records each.
    expect(md5Jobs).toHaveBeenCalled();
    const hashedThere = md5Jobs.mock.calls.reduce((n, [ranges]) => n + ranges.length, 0);
    const aggregates = sent.filter((e) => hasMagic(e.data)).length;
    expect(aggregates).toBeGreaterThan(40);
    expect(hashedThere).toBeGreaterThan(aggregates / 2);
    expect(sorted(readBack())).toEqual(
      sorted(input.map((r) => ({ partitionKey: r.partitionKey, data: r.data.toString('hex') }))),
    );
  });

  it('with hashOffThread: false hashes on the event loop and starts no thread', async () => {
    const md5Jobs = vi.spyOn(HashWorker.prototype, 'md5');
    const p = producer({ hashOffThread: false });
    const input = records();
    for (const r of input) p.send(r);
    await p.flush();
    expect(md5Jobs).not.toHaveBeenCalled();
    expect(sent.filter((e) => hasMagic(e.data)).length).toBeGreaterThan(40);
    expect(readBack()).toHaveLength(input.length);
  });

  it('rejects a hashOffThread that is not a boolean', () => {
    expect(() => producer({ hashOffThread: 'yes' as unknown as boolean })).toThrow(/hashOffThread/);
  });
});

describe('HashWorker', () => {
  it('answers the MD5 of each range, as node:crypto computes it', async () => {
    const worker = new HashWorker(() => {});
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 20 }), async (ranges) => {
          const digests = await worker.md5(ranges)!;
          expect(Buffer.from(digests).equals(Buffer.concat(ranges.map(md5)))).toBe(true);
        }),
        { numRuns: 40 },
      );
    } finally {
      await worker.close();
    }
  });

  it('stays right as its ring fills, wraps around and empties, and copies before returning', async () => {
    const worker = new HashWorker(() => {});
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              sizes: fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 3 }),
              // Waiting for the oldest job only frees the start of the ring while later jobs hold the
              // rest: what makes the next job wrap around.
              waitForOldest: fc.boolean(),
            }),
            { minLength: 1, maxLength: 16 },
          ),
          async (jobs) => {
            const answers: Promise<void>[] = [];
            for (const { sizes, waitForOldest } of jobs) {
              const ranges = sizes.map((n) => randomBytes(n));
              const expected = Buffer.concat(ranges.map(md5));
              const answer = worker.md5(ranges);
              if (answer === undefined) {
                // Only ever refused for want of room: while other jobs hold the ring.
                expect(answers.length).toBeGreaterThan(0);
              } else {
                for (const r of ranges) r.fill(0);
                answers.push(answer.then((d) => expect(Buffer.from(d).equals(expected)).toBe(true)));
              }
              if (waitForOldest) await answers.shift();
            }
            await Promise.all(answers);
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      await worker.close();
    }
  });

  it('refuses a job the ring has no room for, at once, and takes jobs again once answered', async () => {
    const worker = new HashWorker(() => {});
    const quarter = RING_BYTES / 4;
    const held = [1, 2, 3, 4].map(() => worker.md5([randomBytes(quarter)]));
    expect(held.every((answer) => answer !== undefined)).toBe(true);
    expect(worker.md5([randomBytes(1)])).toBeUndefined();
    expect(worker.md5([randomBytes(RING_BYTES + 1)])).toBeUndefined();
    await Promise.all(held);
    const bytes = randomBytes(RING_BYTES);
    expect(Buffer.from((await worker.md5([bytes]))!).equals(md5(bytes))).toBe(true);
    await worker.close();
  });

  it('once closed, fails pending and later jobs, and is no longer usable', async () => {
    const failures: Error[] = [];
    const worker = new HashWorker((e) => failures.push(e));
    const pending = worker.md5([randomBytes(1_000_000)]);
    const closed = worker.close();
    await expect(pending).rejects.toThrow(/closed/);
    await closed;
    expect(worker.usable).toBe(false);
    await expect(worker.md5([Buffer.from('x')])).rejects.toThrow(/closed/);
    // Closing is not a failure of the thread: nothing to warn about.
    expect(failures).toEqual([]);
  });
});

describe('AggregateDigests', () => {
  const keys = new PartitionKeyCache();
  const item = (i: number): AggregatableRecord => ({
    partitionKeyEntry: keys.get(`k${i % 7}`) ?? keys.add(`k${i % 7}`, 2),
    data: randomBytes(3000),
    dataBytes: 3000,
    explicitHashKey: undefined,
  });

  /** Sealed aggregates of 20 records each (about 60 KB), built without their trailer. */
  function aggregates(count: number): OutboundRecord[] {
    return Array.from({ length: count }, (_, a) => {
      const builder = new AggregateBuilder<AggregatableRecord>(1_000_000, 20, () => '1', true);
      for (let i = 0; i < 20; i++) builder.tryAdd(item(a * 20 + i));
      return new OutboundRecord(builder.items as PendingRecord[], builder.build(), 's', 0, 0);
    });
  }

  const correct = (r: OutboundRecord) =>
    Buffer.from(r.record.data.subarray(-16)).equals(md5(r.record.data.subarray(4, -16)));

  it('writes every trailer a request lacks before it may be sent', async () => {
    const worker = new HashWorker(() => {});
    const digests = new AggregateDigests(worker);
    const batch = aggregates(12);
    expect(batch.every((r) => r.digestDue)).toBe(true);
    for (const r of batch.slice(0, 8)) digests.sealed(r);
    await digests.complete(batch);
    expect(batch.every((r) => !r.digestDue && correct(r))).toBe(true);
    await worker.close();
  });

  it('hashes here when the thread fails, so the request still goes out whole', async () => {
    const failing = { usable: true, md5: () => Promise.reject(new Error('thread died')) };
    const digests = new AggregateDigests(failing as unknown as HashWorker);
    const batch = aggregates(6);
    for (const r of batch) digests.sealed(r);
    await digests.complete(batch);
    expect(batch.every((r) => !r.digestDue && correct(r))).toBe(true);
  });

  it('hashes here, at once, while the thread is behind (its ring full)', () => {
    const digests = new AggregateDigests({ usable: true, md5: () => undefined } as unknown as HashWorker);
    const batch = aggregates(6);
    for (const r of batch) digests.sealed(r);
    // The first 256 KiB made a job, which the thread had no room for.
    expect(batch.slice(0, 5).every((r) => !r.digestDue && correct(r))).toBe(true);
    expect(batch[5]!.digestDue).toBe(true);
    expect(digests.complete(batch)).toBeUndefined();
    expect(batch.every((r) => !r.digestDue && correct(r))).toBe(true);
  });

  it('hashes a small request here, at once, without the thread', () => {
    const md5Jobs = vi.fn();
    const digests = new AggregateDigests({ usable: true, md5: md5Jobs } as unknown as HashWorker);
    const batch = aggregates(1);
    expect(digests.complete(batch)).toBeUndefined();
    expect(md5Jobs).not.toHaveBeenCalled();
    expect(correct(batch[0]!)).toBe(true);
  });
});
