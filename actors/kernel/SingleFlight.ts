// One effect under way per key: callers that ask for a key while its effect runs wait for that run's outcome
// instead of starting their own (a cold host's burst of starts reading one agent, of receipts opening one key).
// The shared run has its own fiber, so a caller that stops waiting (interrupted) does not cut it for the others.
import { Deferred, Effect } from "effect"

export type SingleFlight<K, A, E> = (
  key: K,
  effect: Effect.Effect<A, E>,
  /**
   * Which run may be joined: a caller joins the run under way only when it began with the same tag (a watch's
   * generation: a read that began before the latest change is not joined, it may not see it).
   */
  tag?: number
) => Effect.Effect<A, E>

export const make = <K, A, E>(): SingleFlight<K, A, E> => {
  const under = new Map<K, { readonly tag: number; readonly done: Deferred.Deferred<A, E> }>()
  return (key, effect, tag = 0) =>
    Effect.gen(function*() {
      const now = under.get(key)
      if (now !== undefined && now.tag === tag) return yield* Deferred.await(now.done)
      const done = yield* Deferred.make<A, E>()
      under.set(key, { tag, done })
      yield* Effect.forkDetach(
        effect.pipe(
          Effect.onExit((exit) =>
            Effect.andThen(
              Effect.sync(() => {
                if (under.get(key)?.done === done) under.delete(key)
              }),
              Deferred.done(done, exit)
            )
          )
        )
      )
      return yield* Deferred.await(done)
    })
}
