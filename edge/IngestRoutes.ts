// NATS ingest over HTTP (ADR 0051): rules, dead letters and per-source counts. The events themselves never pass
// through here: producers publish them straight onto the bus.
import { Effect } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { Ingest } from "../actors/ingest/Ingest.ts"
import * as Queries from "../projections/Queries.ts"
import { handlers, reply } from "./Serve.ts"

export const ingestHandlers = handlers({
  createIngestRule: ({ tenant, body }) =>
    Effect.gen(function*() {
      if ((yield* Queries.getAgent(tenant, body.agentName)) === null) yield* (yield* Agents).get(tenant, body.agentName)
      return reply(201, yield* (yield* Ingest).addRule(tenant, body))
    }),
  listIngestRules: ({ tenant }) => Effect.map(Ingest.use((i) => i.rules(tenant)), (items) => ({ items })),
  deleteIngestRule: ({ tenant, params }) => Effect.as(Ingest.use((i) => i.removeRule(tenant, params.id)), null),
  listIngestDead: ({ tenant, query }) =>
    Ingest.use((i) =>
      i.dead(tenant, {
        ...(query.source === undefined ? {} : { source: query.source }),
        limit: query.limit === undefined ? 100 : Number(query.limit)
      })
    ),
  listIngestSources: ({ tenant }) => Effect.map(Ingest.use((i) => i.sources(tenant)), (items) => ({ items }))
})
