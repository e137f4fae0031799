// The marketplace over HTTP (actors/marketplace/Marketplace.ts, ADR 0059).
import { Effect } from "effect"
import { Marketplace } from "../actors/marketplace/Marketplace.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

export const marketplaceHandlers = handlers({
  publishListing: ({ tenant, principal, body }) =>
    Effect.map(
      Marketplace.use((m) => m.publish(tenant, body, actorOf(principal))),
      ({ listing, created }) => reply(created ? 201 : 200, listing, { location: `/v1/marketplace/${listing.slug}` })
    ),
  listListings: ({ query }) => Effect.map(Marketplace.use((m) => m.list(query)), (items) => ({ items })),
  listInvocations: ({ tenant, query }) =>
    Effect.map(Marketplace.use((m) => m.invocations(tenant, query.as ?? "buyer")), (items) => ({ items })),
  getListing: ({ params }) => Marketplace.use((m) => m.get(params.slug)),
  unpublishListing: ({ tenant, principal, params }) =>
    Effect.as(Marketplace.use((m) => m.unpublish(tenant, params.slug, actorOf(principal))), null),
  forkListing: ({ tenant, principal, params, body }) =>
    Effect.map(
      Marketplace.use((m) => m.fork(tenant, params.slug, body, actorOf(principal))),
      (agent) => reply(201, agent, { location: `/v1/agents/${agent.name}` })
    ),
  invokeListing: ({ tenant, principal, params, body }) =>
    Marketplace.use((m) => m.invoke(tenant, params.slug, body, actorOf(principal)))
})
