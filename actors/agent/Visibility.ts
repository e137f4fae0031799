// Which agents are public (ADR 0045): a public agent has an A2A card anyone may read and takes A2A messages from its
// tenant's keys. A flag per agent in a KV bucket (key `<tenant>.<agent>`), not in the agent's journal: it is a
// setting of the deployment's front door, not a version of the agent. Absent means private.
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"

const Flag = Schema.Struct({ public: Schema.Boolean, updatedAt: Schema.String })

const bucket = Kv.bucket({
  name: "lantern-visibility",
  value: Schema.fromJsonString(Flag),
  what: "an agent's visibility"
})

/** A public agent: its tenant and name. */
export interface PublicAgent {
  readonly tenant: string
  readonly agent: string
}

export class Visibility extends Context.Service<Visibility, {
  readonly isPublic: (tenant: string, agent: string) => Effect.Effect<boolean, BusUnavailable>
  readonly set: (tenant: string, agent: string, isPublic: boolean) => Effect.Effect<void, BusUnavailable>
  /** Every public agent of the deployment, or those named `agent`, in key order. */
  readonly publicAgents: (agent?: string) => Effect.Effect<ReadonlyArray<PublicAgent>, BusUnavailable>
}>()("lantern/actors/agent/Visibility") {
  static readonly layer = Layer.effect(
    Visibility,
    Effect.gen(function*() {
      const kv = yield* Kv.open(bucket)
      const isPublic = (tenant: string, agent: string) =>
        kv.get(`${tenant}.${agent}`).pipe(
          Effect.map(Option.match({ onNone: () => false, onSome: (e) => e.value.public })),
          Effect.catchTag("CorruptValue", (e) => Effect.die(e))
        )
      return Visibility.of({
        isPublic,
        // a private agent's key is deleted, so listing the keys lists the public agents
        set: (tenant, agent, flag) =>
          flag
            ? Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.asVoid(kv.put(`${tenant}.${agent}`, { public: true, updatedAt: new Date(now).toISOString() })))
            : Effect.asVoid(kv.delete(`${tenant}.${agent}`)),
        publicAgents: (agent) =>
          Effect.gen(function*() {
            const keys = yield* kv.keys(agent === undefined ? ">" : `*.${agent}`)
            const out: Array<PublicAgent> = []
            for (const key of [...keys].sort()) {
              const [tenant = "", name = ""] = key.split(".")
              if (yield* isPublic(tenant, name)) out.push({ tenant, agent: name })
            }
            return out
          })
      })
    })
  )
}
