// The per-host index of the task stream (ADR 0054, 0063): every task as of the last event of its journal folded
// here, and the order workers claim in, kept in step with it: per tenant a heap of tasks claimable now (priority
// desc, then availability, then submission) and a heap of delayed ones by `availableAt`, moved over as time passes.
import * as Decider from "./Decider.ts"
import { Heap } from "./Heap.ts"

/** An entry of the index: a task as of the last event of its journal this host has folded. */
export interface Entry {
  readonly tenant: string
  readonly id: string
  readonly state: Decider.State
  /** Stream sequence of its last folded event: what a claim expects. */
  readonly seq: number
  /** Stream sequence of its submission: FIFO within a priority and an availability instant. */
  readonly order: number
}

export const keyOf = (tenant: string, id: string) => `${tenant}.${id}`

/** The claim order: higher priority first, then earlier availability, then earlier submission. */
export const claimsBefore = (a: Entry, b: Entry) =>
  a.state.priority !== b.state.priority
    ? a.state.priority > b.state.priority
    : a.state.availableAt !== b.state.availableAt
    ? a.state.availableAt < b.state.availableAt
    : a.order < b.order

/** Heaps hold the entry as it was queued; it is live while the index still queues that sequence of its task. */
interface Queued {
  readonly key: string
  readonly entry: Entry
}

interface TenantQueue {
  /** Claimable at or before the last instant `take` or `nextAvailable` looked at, in claim order. */
  readonly ready: Heap<Queued>
  /** Claimable later, earliest first. */
  readonly delayed: Heap<Queued>
}

/** Heaps are compacted when stale entries outnumber live ones by this much (amortized, so still O(log n) a change). */
const SLACK = 1_024

export class Index {
  private readonly entries = new Map<string, Entry>()
  /** Per claimable task not taken, the sequence its live heap entry has: at most one live entry a task. */
  private readonly queued = new Map<string, number>()
  /** Tasks a worker of this host is claiming: not offered again until released. */
  private readonly taken = new Set<string>()
  private readonly running_ = new Set<string>()
  private readonly tenants = new Map<string, TenantQueue>()
  private inHeaps = 0

  get(key: string): Entry | undefined {
    return this.entries.get(key)
  }

  values(): IterableIterator<Entry> {
    return this.entries.values()
  }

  get size(): number {
    return this.entries.size
  }

  /** Every task running now. */
  running(): ReadonlyArray<Entry> {
    return [...this.running_].map((k) => this.entries.get(k)!)
  }

  /** Heap entries held, stale ones included (bounded by the compaction). */
  get heaped(): number {
    return this.inHeaps
  }

  /** Claimable tasks queued (taken ones aside). */
  get claimable(): number {
    return this.queued.size
  }

  /** The tenant's queue at `now`: claimable per priority ("0".."9"), delayed, running and blocked counts. */
  depth(tenant: string, now: number) {
    const depth: Record<string, number> = {}
    for (let p = 0; p <= 9; p++) depth[String(p)] = 0
    let delayed = 0
    let running = 0
    let blocked = 0
    for (const e of this.entries.values()) {
      if (e.tenant !== tenant) continue
      if (Decider.isClaimable(e.state)) {
        if (e.state.availableAt > now) delayed++
        else depth[String(e.state.priority)] = (depth[String(e.state.priority)] ?? 0) + 1
      } else if (e.state.status === "running") running++
      else if (e.state.status === "blocked") blocked++
    }
    return { depth, delayed, running, blocked }
  }

  /**
   * Puts a newer state of a task (an older or equal sequence, or a state with no submission, is ignored): returns the
   * entry before it (undefined when it is new) and the entry now, or null when nothing changed.
   */
  put(
    tenant: string,
    id: string,
    state: Decider.State,
    seq: number,
    order: number
  ): { readonly before: Entry | undefined; readonly entry: Entry } | null {
    const key = keyOf(tenant, id)
    const before = this.entries.get(key)
    if (before !== undefined && before.seq >= seq) return null
    if (state.submitted === null) return null
    const entry: Entry = { tenant, id, state, seq, order: before?.order ?? order }
    this.entries.set(key, entry)
    if (state.status === "running") this.running_.add(key)
    else this.running_.delete(key)
    this.queued.delete(key)
    if (!this.taken.has(key)) this.enqueue(key, entry)
    return { before, entry }
  }

  /**
   * Takes the first task in claim order that is claimable at `now`, of a tenant `paused` does not hold back; it is
   * not offered again until `release`d (whatever its claim came to).
   */
  take(now: number, paused: (tenant: string) => boolean): Entry | null {
    let best: { queue: TenantQueue; entry: Entry } | null = null
    for (const [tenant, queue] of this.tenants) {
      if (paused(tenant)) continue
      const top = this.due(queue, now)
      if (top !== undefined && (best === null || claimsBefore(top.entry, best.entry)))
        best = { queue, entry: top.entry }
    }
    if (best === null) return null
    best.queue.ready.pop()
    this.inHeaps--
    const key = keyOf(best.entry.tenant, best.entry.id)
    this.queued.delete(key)
    this.taken.add(key)
    return best.entry
  }

  /** Ends a `take`: the task is offered again as it stands now, if it is still claimable. */
  release(tenant: string, id: string): void {
    const key = keyOf(tenant, id)
    if (!this.taken.delete(key)) return
    const entry = this.entries.get(key)
    if (entry !== undefined && !this.queued.has(key)) this.enqueue(key, entry)
  }

  /** The earliest instant after `now` at which a task of a tenant not paused becomes claimable, if any. */
  nextAvailable(now: number, paused: (tenant: string) => boolean): number | null {
    let next: number | null = null
    for (const [tenant, queue] of this.tenants) {
      if (paused(tenant)) continue
      this.due(queue, now)
      const top = this.top(queue.delayed)
      if (top !== undefined && (next === null || top.entry.state.availableAt < next)) next = top.entry.state.availableAt
    }
    return next
  }

  private enqueue(key: string, entry: Entry) {
    if (!Decider.isClaimable(entry.state)) return
    this.queued.set(key, entry.seq)
    let queue = this.tenants.get(entry.tenant)
    if (queue === undefined) {
      queue = {
        ready: new Heap((a, b) => claimsBefore(a.entry, b.entry)),
        delayed: new Heap((a, b) => a.entry.state.availableAt < b.entry.state.availableAt)
      }
      this.tenants.set(entry.tenant, queue)
    }
    // every task passes through the delayed heap: `due` moves it over once its instant has come
    queue.delayed.push({ key, entry })
    this.inHeaps++
    if (this.inHeaps > 2 * this.queued.size + SLACK) this.compact()
  }

  private live(q: Queued) {
    return this.queued.get(q.key) === q.entry.seq
  }

  /** The first live entry of `heap`, stale ones above it dropped. */
  private top(heap: Heap<Queued>): Queued | undefined {
    for (let q = heap.peek(); q !== undefined; q = heap.peek()) {
      if (this.live(q)) return q
      heap.pop()
      this.inHeaps--
    }
    return undefined
  }

  /** Moves the delayed tasks due at `now` over, and returns the first in claim order. */
  private due(queue: TenantQueue, now: number): Queued | undefined {
    for (
      let q = this.top(queue.delayed);
      q !== undefined && q.entry.state.availableAt <= now;
      q = this.top(queue.delayed)
    ) {
      queue.delayed.pop()
      queue.ready.push(q)
    }
    return this.top(queue.ready)
  }

  private compact() {
    let inHeaps = 0
    for (const queue of this.tenants.values()) {
      queue.ready.retain((q) => this.live(q))
      queue.delayed.retain((q) => this.live(q))
      inHeaps += queue.ready.size + queue.delayed.size
    }
    this.inHeaps = inHeaps
  }
}
