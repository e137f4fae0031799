// GET /v1/audit: the caller's tenant's audit log, newest first, from the projection (audit_events), filtered by
// action and time and paged by cursor. Entries without a tenant (`auth.failed`) are the operator's: ADR 0019.
import { Effect } from "effect"
import * as AuditLog from "../projections/AuditLog.ts"
import { badRequest } from "./Http.ts"
import { handlers } from "./Serve.ts"

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

export const auditHandlers = handlers({
  listAudit: ({ tenant, query: q }) =>
    Effect.gen(function*() {
      const since = q.since === undefined ? undefined : yield* instant(q.since)
      return yield* AuditLog.list(tenant, {
        ...(q.action === undefined ? {} : { action: q.action }),
        ...(since === undefined ? {} : { since }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor })
      })
    })
})
