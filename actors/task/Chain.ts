// An adapter fallback chain (issue 16): a task names one adapter or several; the first whose probe passes carries the
// attempt. Every probe's result is returned so the worker journals why each earlier adapter was passed over.
import { Effect } from "effect"
import type { AdapterSpec } from "../../schema/Task.ts"
import type { Adapter } from "./Adapter.ts"

export interface ProbeResult {
  /** The spec's place in the chain. */
  readonly index: number
  readonly type: AdapterSpec["type"]
  readonly ok: boolean
  /** Why not, when it did not pass. */
  readonly reason: string | null
}

export interface Chosen {
  readonly adapter: Adapter
  readonly spec: AdapterSpec
  readonly index: number
}

export interface ChainResult {
  /** The first adapter whose probe passed, or null when none did. */
  readonly chosen: Chosen | null
  /** The probes run, in chain order: every spec up to and including the chosen one (all of them when none passed). */
  readonly probes: ReadonlyArray<ProbeResult>
}

/** A spec or a chain of them, as a submission gives it, as a chain. */
export const specsOf = (adapter: AdapterSpec | ReadonlyArray<AdapterSpec>): ReadonlyArray<AdapterSpec> =>
  Array.isArray(adapter) ? adapter : [adapter as AdapterSpec]

/**
 * Probes `specs` in order with the adapter of each one's type (from `adapters`) and stops at the first that passes.
 * A type no adapter here implements fails its probe; so does a probe that dies (its defect is the reason).
 */
export const probeChain = (
  adapters: ReadonlyArray<Adapter> | ReadonlyMap<string, Adapter>,
  tenant: string,
  specs: ReadonlyArray<AdapterSpec>
): Effect.Effect<ChainResult> =>
  Effect.gen(function*() {
    const lookup = (type: string): Adapter | undefined =>
      adapters instanceof Map
        ? (adapters as ReadonlyMap<string, Adapter>).get(type)
        : (adapters as ReadonlyArray<Adapter>).find((a) => a.type === type)
    const probes: Array<ProbeResult> = []
    for (const [index, spec] of specs.entries()) {
      const adapter = lookup(spec.type)
      if (adapter === undefined) {
        probes.push({ index, type: spec.type, ok: false, reason: `no ${spec.type} adapter on this host` })
        continue
      }
      const verdict: { readonly ok: true } | { readonly ok: false; readonly reason: string } = yield* adapter.probe(
        tenant,
        spec
      ).pipe(
        Effect.catchCause((cause) =>
          Effect.succeed({ ok: false as const, reason: `the probe failed: ${String(cause).slice(0, 500)}` })
        )
      )
      probes.push({ index, type: spec.type, ok: verdict.ok, reason: verdict.ok ? null : verdict.reason })
      if (verdict.ok) return { chosen: { adapter, spec, index }, probes }
    }
    return { chosen: null, probes }
  })

/** Why no adapter of a chain could run, in one line. */
export const refusal = (probes: ReadonlyArray<ProbeResult>): string =>
  probes.length === 0
    ? "the task names no adapter"
    : `no adapter could run: ${probes.map((p) => `${p.type}: ${p.reason ?? "ok"}`).join("; ")}`
