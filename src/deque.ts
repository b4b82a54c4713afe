/**
 * A double-ended queue: both ends take and give an item in O(1). Items put at the front go on a stack
 * (`#front`, whose last element is the first item), the rest in `#queue` from `#head` on. A throttled
 * request can put hundreds of records back in front of a queue of thousands (records sent
 * unaggregated), and an array's `unshift` moves the whole queue each time.
 */
export class Deque<T> {
  #front: T[] = [];
  #queue: T[] = [];
  #head = 0;

  get length(): number {
    return this.#front.length + this.#queue.length - this.#head;
  }

  /** The first item, if any. */
  peek(): T | undefined {
    const front = this.#front;
    return front.length > 0 ? front[front.length - 1] : this.#queue[this.#head];
  }

  /** The last item, if any. */
  peekLast(): T | undefined {
    return this.#queue.length > this.#head ? this.#queue[this.#queue.length - 1] : this.#front[0];
  }

  push(item: T): void {
    this.#queue.push(item);
  }

  unshift(item: T): void {
    if (this.#head > 0 && this.#front.length === 0) this.#queue[--this.#head] = item;
    else this.#front.push(item);
  }

  shift(): T | undefined {
    if (this.#front.length > 0) return this.#front.pop();
    if (this.#head >= this.#queue.length) return undefined;
    const item = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined as T;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** The items, first to last (without removing them). */
  *[Symbol.iterator](): Generator<T> {
    for (let i = this.#front.length - 1; i >= 0; i--) yield this.#front[i]!;
    for (let i = this.#head; i < this.#queue.length; i++) yield this.#queue[i]!;
  }

  /** Removes and returns every item, first to last. */
  drain(): T[] {
    const items = this.#front.reverse().concat(this.#queue.slice(this.#head));
    this.#front = [];
    this.#queue = [];
    this.#head = 0;
    return items;
  }
}
