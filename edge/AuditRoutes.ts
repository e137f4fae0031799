// GET /v1/audit: the caller's tenant's audit log, newest first, from the projection (audit_events), filtered by
// action and time and paged by cursor. Entries without a tenant (`auth.failed`) are the operator's: ADR 0019.
import { Effect, Layer } from "effect"
import * as AuditLog from "../projections/AuditLog.ts"
import { AuditQuery } from "../schema/Audit.ts"
import { badRequest, decode, json, query } from "./Http.ts"
import { authed, route } from "./Routes.ts"

/** The query as decoded and documented. */
export const ListQuery = AuditQuery

/** `since` as an instant Postgres reads the same on every driver; a day that does not exist is refused. */
const instant = (since: string) =>
  Effect.suspend(() => {
    const [y, m, d] = since.slice(0, 10).split("-").map(Number) as [number, number, number]
    const exists = new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d
    const t = Date.parse(since)
    return exists && Number.isFinite(t)
      ? Effect.succeed(new Date(t).toISOString())
      : Effect.fail(badRequest("since", `'${since}' is not a date that exists`))
  })

export const auditRoutes = Layer.mergeAll(
  route(
    "GET",
    "/v1/audit",
    authed((tenant) =>
      Effect.gen(function*() {
        const q = yield* decode(ListQuery, yield* query)
        const since = q.since === undefined ? undefined : yield* instant(q.since)
        return json(
          yield* AuditLog.list(tenant, {
            ...(q.action === undefined ? {} : { action: q.action }),
            ...(since === undefined ? {} : { since }),
            ...(q.limit === undefined ? {} : { limit: q.limit }),
            ...(q.cursor === undefined ? {} : { cursor: q.cursor })
          })
        )
      })
    )
  )
)
