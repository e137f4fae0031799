// Where a new run is driven (ADR 0039): on the host that accepted it, when that host drives runs and has a free
// slot. The run's lease entry is written naming this host before RunStarted is journaled, so a host that dies in
// between is probed dead and its run taken over like any other; the drive starts from the state just appended,
// with nothing read back and no work message. A host without drivers or without a free slot queues the run as
// before, and the work queue spreads it over the hosts.
import { Context, Effect, Layer, type Scope } from "effect"
import type { Lease } from "../../bus/Leases.ts"
import type { Stored } from "../../schema/Envelope.ts"
import type * as Actor from "../kernel/Actor.ts"
import type { State } from "./Decider.ts"

/** What a run's starter hands its drive: the lease it wrote and the journal it appended. */
export interface Start {
  readonly lease: Lease
  readonly loaded: Actor.Loaded<State>
  readonly stored: ReadonlyArray<Stored>
  /** The caller's trace context (W3C traceparent), continued by the drive. */
  readonly traceparent: string | null
}

type Drive = (tenant: string, runId: string, start: Start) => void

export class Dispatch extends Context.Service<Dispatch, {
  /** Takes a slot for a run about to start on this host; false when this host drives no runs or is full. */
  readonly claim: () => boolean
  /** Gives a slot back: its run is not driven here after all, or its drive ended. */
  readonly release: () => void
  /** Drives a run in the background in the slot it claimed; the slot is freed when the drive ends. */
  readonly start: (tenant: string, runId: string, start: Start) => void
  /** Installed by the run driver of a host that drives runs, with how many runs it drives at once this way. */
  readonly install: (drive: Drive, slots: number) => Effect.Effect<void, never, Scope.Scope>
}>()("lantern/actors/run/Dispatch") {
  static readonly layer = Layer.sync(Dispatch, () => {
    let drive: Drive | null = null
    let slots = 0
    let used = 0
    return Dispatch.of({
      claim: () => {
        if (drive === null || used >= slots) return false
        used++
        return true
      },
      release: () => {
        used = Math.max(0, used - 1)
      },
      start: (tenant, runId, start) => {
        if (drive === null) throw new Error("no run driver installed on this host")
        drive(tenant, runId, start)
      },
      install: (d, n) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            drive = d
            slots = n
          }),
          () =>
            Effect.sync(() => {
              drive = null
              slots = 0
            })
        )
    })
  })
}
