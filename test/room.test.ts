import { describe, expect, it } from 'vitest';
import { Room, type RoomRequest, RoomShare } from '../src/room.js';

const LIMITS = {
  maxOutstandingRecords: 100,
  maxBufferedBytes: 1_000,
  recordTtlMs: 10_000,
  maxBufferedTimeMs: 100,
  requestTimeoutMs: 1_000,
};

/** A room whose clock the test moves, paying 'drain' to nobody. */
const roomOnClock = (now: () => number) => new Room(LIMITS, now, () => {});

/** A room at a still clock, with shares of `shareBytes` each (what a shard writes in half the TTL). */
function setUp(shareBytes = 300) {
  const now = 0;
  const drains: number[] = [];
  const room = new Room(
    LIMITS,
    () => now,
    () => drains.push(now),
  );
  const share = (name: string) => {
    const s = new RoomShare(name);
    room.setShareCapacity(s, (shareBytes * 1000) / (LIMITS.recordTtlMs / 2), Number.POSITIVE_INFINITY);
    return s;
  };
  /** Records admitted, by name, in order; each is taken into the share it was admitted to. */
  const admitted: string[] = [];
  const waitFor = (name: string, bytes: number, s: RoomShare, shareNow: () => RoomShare = () => s) => {
    const request: RoomRequest = {
      admit: (to) => {
        admitted.push(`${name}@${to.label}`);
        room.take(bytes, now, to);
      },
      cancel: () => admitted.push(`${name} cancelled`),
      share: shareNow,
    };
    room.wait(bytes, s, request, undefined);
  };
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  return { room, share, admitted, waitFor, drains, settle };
}

describe('Room', () => {
  it("admits a share's waiters in call order, and lets another share's pass a full one", async () => {
    const { room, share, admitted, waitFor, settle } = setUp();
    const hot = share('hot');
    const cold = share('cold');
    const other = share('other');
    room.take(10, 0, other);
    room.take(300, 0, hot); // the hot share is full
    waitFor('h1', 100, hot);
    waitFor('h2', 100, hot);
    waitFor('c1', 100, cold);
    expect(room.hasRoomFor(10, hot, 0)).toBe(false);
    expect(room.hasRoomFor(10, cold, 0)).toBe(false); // c1 waits first
    room.free(10, 0, other); // any record settling looks at the waiters again
    await settle();
    expect(admitted).toEqual(['c1@cold']);
    room.free(300, 0, hot);
    await settle();
    expect(admitted).toEqual(['c1@cold', 'h1@hot', 'h2@hot']);
    expect(room.waiting).toBe(0);
  });

  it('lets nobody pass a waiter whose share has room but the producer has not', async () => {
    const { room, share, admitted, waitFor, settle } = setUp(1_000);
    const a = share('a');
    const b = share('b');
    room.take(950, 0, a);
    waitFor('a1', 100, b); // b has room; the producer (1,000 bytes) has not
    expect(room.hasRoomFor(10, a, 0)).toBe(false);
    expect(room.hasRoomFor(10, share('c'), 0)).toBe(false);
    expect(room.fullFor(10)).toBe('producer');
    room.free(100, 0, a);
    await settle();
    expect(admitted).toEqual(['a1@b']);
  });

  it.each([
    // a2 no longer fits its share once a1 and b1 are in: c1 goes, though the producer is too full for a2.
    [650, ['a1@a', 'b1@b', 'c1@c'], 850],
    // a2 fits the producer, but not its share's part of it: it stays out.
    [450, ['a1@a', 'b1@b', 'c1@c'], 650],
  ])(
    'asks again, after each admission, whether a waiter fits its share (b1 of %i bytes)',
    async (b1, expected, held) => {
      const { room, share, admitted, waitFor, settle } = setUp(1_000);
      const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(share) as [RoomShare, RoomShare, RoomShare, RoomShare];
      // Four shards: past half the producer (500 of 1,000 bytes), each share holds at most 250.
      room.setShards(4);
      room.take(1_000, 0, d);
      waitFor('a1', 100, a);
      waitFor('b1', b1, b);
      waitFor('a2', 300, a);
      waitFor('c1', 100, c);
      room.free(1_000, 0, d);
      await settle();
      expect(admitted).toEqual(expected);
      expect(room.bytes).toBe(held);
      expect(a.bytes).toBe(100);
      // Nothing holds a share with room back: a record for c's shard goes now.
      expect(room.hasRoomFor(100, c, 0)).toBe(true);
    },
  );

  it('reshare moves the waiters of the shares it is given to the share each asks for, in call order', async () => {
    const { room, share, admitted, waitFor, settle } = setUp();
    const stream = share('stream'); // records wait here while their shard is not known
    const shard = share('shard');
    const other = share('other');
    room.take(1_000, 0, other); // the producer is full
    let mapKnown = false;
    const current = () => (mapKnown ? shard : stream);
    waitFor('r1', 200, stream, current);
    waitFor('o1', 100, other);
    waitFor('r2', 200, stream, current);
    mapKnown = true;
    room.reshare([stream]);
    waitFor('r3', 200, shard);
    room.free(1_000, 0, other);
    await settle();
    // The shard's share (300 bytes) takes r1 only; r2 and r3 wait there, in call order.
    expect(admitted).toEqual(['r1@shard', 'o1@other']);
    room.free(200, 0, shard);
    await settle();
    expect(admitted).toEqual(['r1@shard', 'o1@other', 'r2@shard']);
  });

  it("pays 'drain' once the share a send was refused for has room, whatever waits for another", async () => {
    const { room, share, waitFor, drains, settle } = setUp();
    const hot = share('hot');
    const cold = share('cold');
    room.take(300, 0, hot);
    waitFor('h1', 100, hot); // waits until the hot share has room
    room.take(300, 0, cold);
    room.owe(cold, 300); // a send for the cold share was refused
    room.free(300, 0, cold);
    await settle();
    expect(drains).toHaveLength(1);
    expect(room.waiting).toBe(1);
  });

  it('closes a share while an eighth of it has been held past half the TTL, and only that share', () => {
    let now = 0;
    const room = roomOnClock(() => now);
    const slow = new RoomShare('slow');
    const other = new RoomShare('other');
    // An eighth of the producer's 1,000 bytes is 125.
    room.take(100, 0, slow);
    now = 3_000;
    room.take(100, now, slow);
    now = 5_100; // the first is older than half the TTL (5 s): 100 bytes, not yet an eighth
    expect(room.hasRoomFor(10, slow, now)).toBe(true);
    now = 8_100; // both are: 200 bytes
    expect(room.hasRoomFor(10, slow, now)).toBe(false);
    expect(room.fullFor(10)).toBe('share');
    expect(room.hasRoomFor(10, other, now)).toBe(true);
    room.free(100, 0, slow); // the oldest settles: 100 bytes held too long are left
    expect(room.hasRoomFor(10, slow, now)).toBe(true);
    room.take(100, now, slow);
    now = 13_200; // the other two grew old as well: 200 bytes again
    expect(room.hasRoomFor(10, slow, now)).toBe(false);
    room.free(100, 3_000, slow);
    room.free(100, 8_100, slow);
    expect(room.hasRoomFor(10, slow, now)).toBe(true);
    expect(room.bytes).toBe(0);
  });

  it("when the put that held everyone back aborts, the others go and 'drain' is paid", async () => {
    const { room, share, drains, settle } = setUp(1_000);
    const a = share('a');
    const b = share('b');
    const c = share('c');
    room.take(400, 0, a);
    const controller = new AbortController();
    const cancelled: unknown[] = [];
    // b has room, the producer (1,000 bytes) has not: nobody may pass it.
    room.wait(
      700,
      b,
      { admit: () => {}, cancel: (why) => cancelled.push(why), share: () => b },
      controller.signal,
    );
    expect(room.hasRoomFor(10, c, 0)).toBe(false);
    room.owe(c, 10); // a send for c was refused
    controller.abort();
    expect(cancelled).toEqual(['aborted']);
    expect(room.hasRoomFor(10, c, 0)).toBe(true);
    await settle();
    expect(drains).toHaveLength(1);
  });

  it('a record moved to its shard keeps its age there, and leaves the share it came from', () => {
    let now = 0;
    const room = roomOnClock(() => now);
    const stream = new RoomShare('stream');
    const shard = new RoomShare('shard');
    room.take(100, 0, stream);
    room.take(100, 0, stream);
    now = 3_000;
    room.take(10, now, shard);
    room.move(100, 0, stream, shard);
    room.move(100, 0, stream, shard);
    expect([stream.records, stream.bytes, shard.records, shard.bytes]).toEqual([0, 0, 3, 210]);
    now = 5_100; // the moved records are past half the TTL: 200 bytes, over an eighth of 1,000
    expect(room.hasRoomFor(10, shard, now)).toBe(false);
    expect(room.hasRoomFor(10, stream, now)).toBe(true);
    room.free(100, 0, shard); // one stuck record alone does not close a shard
    expect(room.hasRoomFor(10, shard, now)).toBe(true);
    room.free(100, 0, shard);
    expect(room.bytes).toBe(10);
  });

  it("'drain' owed for a share's records follows them when they move to another", async () => {
    const { room, share, drains, settle } = setUp();
    const stream = share('stream');
    const shard = share('shard');
    const other = share('other');
    room.take(200, 0, stream);
    room.owe(stream, 200); // a send was refused for the stream's share
    room.move(200, 0, stream, shard); // its shards became known: 200 of the shard's 300 bytes
    room.take(10, 0, other);
    room.free(10, 0, other);
    await settle();
    expect(drains).toHaveLength(0);
    room.free(200, 0, shard);
    await settle();
    expect(drains).toHaveLength(1);
  });

  it('one record held too long does not close its shard alone, however small its part', () => {
    let now = 0;
    const room = roomOnClock(() => now);
    room.setShards(64); // each shard's part of the 1,000 bytes: 15; an eighth of it, 2
    const share = new RoomShare('poisoned');
    room.take(100, 0, share); // retried until it expires
    now = 5_100;
    expect(room.hasRoomFor(10, share, now)).toBe(true);
    room.take(10, 0, share);
    expect(room.hasRoomFor(10, share, now)).toBe(false);
  });

  it('evict cancels every waiter of every share, in call order', () => {
    const { room, share, admitted, waitFor } = setUp();
    const a = share('a');
    const b = share('b');
    room.take(300, 0, a);
    room.take(300, 0, b);
    waitFor('a1', 10, a);
    waitFor('b1', 10, b);
    waitFor('a2', 10, a);
    room.evict('closing');
    expect(admitted).toEqual(['a1 cancelled', 'b1 cancelled', 'a2 cancelled']);
    expect(room.waiting).toBe(0);
  });
});
