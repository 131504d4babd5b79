// A binary min-heap ordered by a caller's "comes first" function: the merge queues of SPM and BPE.

export class Heap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const a = this.items;
    // Move the hole up instead of swapping: half the writes.
    let i = a.length;
    a.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(item, a[parent])) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length <= 1) return a.pop();
    const top = a[0];
    const item = a.pop()!;
    const n = a.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(a[child + 1], a[child])) child++;
      if (!this.before(a[child], item)) break;
      a[i] = a[child];
      i = child;
    }
    a[i] = item;
    return top;
  }
}
