// A binary min-heap under a comparator: the task index's claim order (actors/task/Index.ts) and its delayed tasks by
// availability. Removal is lazy: the index drops entries that went stale when they reach the top.

export class Heap<A> {
  private readonly items: Array<A> = []

  /** `before(a, b)`: a comes out before b. */
  constructor(private readonly before: (a: A, b: A) => boolean) {}

  get size(): number {
    return this.items.length
  }

  peek(): A | undefined {
    return this.items[0]
  }

  push(item: A): void {
    const items = this.items
    items.push(item)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(items[i]!, items[parent]!)) break
      ;[items[i], items[parent]] = [items[parent]!, items[i]!]
      i = parent
    }
  }

  pop(): A | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    items[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let first = i
      if (left < items.length && this.before(items[left]!, items[first]!)) first = left
      if (right < items.length && this.before(items[right]!, items[first]!)) first = right
      if (first === i) break
      ;[items[i], items[first]] = [items[first]!, items[i]!]
      i = first
    }
    return top
  }

  /** Keeps only the items `keep` says to (and restores the order): what compacts stale entries away. */
  retain(keep: (item: A) => boolean): void {
    const kept = this.items.filter(keep)
    this.items.length = 0
    for (const item of kept) this.push(item)
  }
}
