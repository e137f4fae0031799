// The tenant's egress allowlist over HTTP (actors/tools/Egress.ts, ADR 0043): what its HTTP tools may call.
import { Effect } from "effect"
import { Audit } from "../actors/audit/Audit.ts"
import { Egress } from "../actors/tools/Egress.ts"
import { actorOf, handlers } from "./Serve.ts"

export const egressHandlers = handlers({
  getEgress: ({ tenant }) => Effect.map(Egress.use((e) => e.hosts(tenant)), (hosts) => ({ hosts })),
  putEgress: ({ tenant, principal, body }) =>
    Effect.gen(function*() {
      const saved = yield* (yield* Egress).set(tenant, body.hosts)
      yield* (yield* Audit).record({
        tenant,
        action: "egress.changed",
        actor: actorOf(principal),
        target: "egress",
        outcome: "allowed",
        detail: { hosts: saved.hosts.join(", ") }
      })
      return saved
    })
})
