// How the task index tells who follows it that it changed: listeners called with each task change (a worker
// interrupts a canceled task's adapter), a PubSub for the SSE stream, and wake-ups for idle workers. A wake-up is
// counted, so a worker that looked at the index at version v and then waits returns at once if anything changed
// since v (a change between its look and its wait is not lost).
import { Effect, PubSub, Stream } from "effect"
import type { TaskChange } from "./Queue.ts"

export class Changes {
  private version_ = 0
  private waiters: Array<() => void> = []
  private readonly listeners = new Set<(c: TaskChange) => void>()

  constructor(private readonly pubsub: PubSub.PubSub<TaskChange>) {}

  static readonly make = Effect.map(PubSub.unbounded<TaskChange>(), (pubsub) => new Changes(pubsub))

  /** How many times the index changed: what `wait` compares against. */
  get version(): number {
    return this.version_
  }

  /** The index changed (a task, or a tenant's dispatch): wakes every waiting worker. */
  wake(): void {
    this.version_++
    const waiting = this.waiters
    this.waiters = []
    for (const f of waiting) f()
  }

  /** Tells listeners and the stream about a task's change, and wakes the waiting workers. */
  publish(change: TaskChange): void {
    for (const f of this.listeners) {
      try {
        f(change)
      } catch {
        // a listener's failure is its own
      }
    }
    PubSub.publishUnsafe(this.pubsub, change)
    this.wake()
  }

  /** Resolves at the first change after version `since` (at once if there was one already), or after `ms`. */
  wait(ms: number, since: number): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.version_ !== since) {
        resume(Effect.void)
        return
      }
      const done = () => {
        clearTimeout(timer)
        resume(Effect.void)
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== done)
        resume(Effect.void)
      }, Math.max(1, ms))
      this.waiters.push(done)
      return Effect.sync(() => {
        clearTimeout(timer)
        this.waiters = this.waiters.filter((f) => f !== done)
      })
    })
  }

  onChange(f: (change: TaskChange) => void): () => void {
    this.listeners.add(f)
    return () => this.listeners.delete(f)
  }

  /** The changes of `tenant` (every tenant's when null) from now on. */
  stream(tenant: string | null): Stream.Stream<TaskChange> {
    return Stream.fromPubSub(this.pubsub).pipe(Stream.filter((c) => tenant === null || c.task.tenant === tenant))
  }
}
