// A host's start (ADR 0072): work that only warms a cache for later (the spawner's pool of harness processes) waits
// until the host is up, so it does not take the CPU from the start itself. edge/Stack.ts's launch completes it once
// every layer is built; where nothing provides it (tests, tools), that work begins at once.
import { Context, Deferred, Effect, Option } from "effect"

export class Started extends Context.Service<Started, {
  readonly latch: Deferred.Deferred<void>
}>()("lantern/Started") {}

export const make: Effect.Effect<Started["Service"]> = Effect.map(Deferred.make<void>(), (latch) => ({ latch }))

/** Waits until the host has started, or not at all where no start is tracked. */
export const whenStarted: Effect.Effect<void> = Effect.flatMap(
  Effect.serviceOption(Started),
  Option.match({ onNone: () => Effect.void, onSome: (s) => Deferred.await(s.latch) })
)
