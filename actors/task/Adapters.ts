// The adapters a worker can run a task's attempt with (ADR 0054): probed in the order of the task's chain, the
// first whose probe passes carries the attempt; the probes and the choice are journaled by the worker.
import { Context, Effect, Layer } from "effect"
import type { AdapterSpec, TaskEvent } from "../../schema/Task.ts"
import type { Adapter } from "./Adapter.ts"
import * as AgentAdapter from "./AgentAdapter.ts"
import * as AgentCliAdapter from "./AgentCliAdapter.ts"
import * as OllamaAdapter from "./OllamaAdapter.ts"
import * as ScriptAdapter from "./ScriptAdapter.ts"

type Probe = Extract<TaskEvent, { _tag: "TaskAdapterChosen" }>["probes"][number]

export interface Chosen {
  readonly probes: ReadonlyArray<Probe>
  /** The adapter that passed its probe first, and the spec it runs; null when none did. */
  readonly chosen: { readonly adapter: Adapter; readonly spec: AdapterSpec } | null
}

export class Adapters extends Context.Service<Adapters, {
  readonly all: ReadonlyArray<Adapter>
  /** Probes `chain` in order until one passes (the rest are not probed). */
  readonly choose: (tenant: string, chain: ReadonlyArray<AdapterSpec>) => Effect.Effect<Chosen>
}>()("lantern/actors/task/Adapters") {
  /** Adapters are registered here, one line each. */
  static readonly layer = Layer.effect(
    Adapters,
    Effect.gen(function*() {
      const all: ReadonlyArray<Adapter> = [
        yield* AgentAdapter.make,
        yield* ScriptAdapter.make,
        yield* OllamaAdapter.fromHost,
        yield* AgentCliAdapter.fromHost
      ]
      return Adapters.of(fromList(all))
    })
  )
}

export const fromList = (all: ReadonlyArray<Adapter>): Adapters["Service"] => ({
  all,
  choose: (tenant, chain) =>
    Effect.gen(function*() {
      const probes: Array<Probe> = []
      for (const spec of chain) {
        const adapter = all.find((a) => a.type === spec.type)
        if (adapter === undefined) {
          probes.push({ type: spec.type, ok: false, reason: `no '${spec.type}' adapter on this host` })
          continue
        }
        const probe = yield* adapter.probe(tenant, spec).pipe(
          Effect.catchCause(() => Effect.succeed({ ok: false as const, reason: "its probe failed" }))
        )
        probes.push({ type: spec.type, ok: probe.ok, reason: probe.ok ? null : probe.reason })
        if (probe.ok) return { probes, chosen: { adapter, spec } }
      }
      return { probes, chosen: null }
    })
})
