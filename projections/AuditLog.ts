// The audit log's read: a tenant's entries newest first (audit ids are time-ordered), by action and from a time,
// paged by the last id seen. Runs as the edge's role with the tenant set, and filters by tenant too.
import { Effect } from "effect"
import type { AuditEntryResponse, AuditPage } from "../schema/Audit.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import { queryAs, type Sql } from "./Sql.ts"

export interface ListOptions {
  readonly action?: string
  /** An instant (ISO-8601): entries at or after it. */
  readonly since?: string
  /** 1 to 200; 50 when absent. */
  readonly limit?: number
  /** The last entry id of the previous page. */
  readonly cursor?: string
}

export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 200

const COLUMNS =
  `id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at, action, actor, target, outcome, detail`

export const list = (tenant: string, options: ListOptions = {}): Effect.Effect<AuditPage, DatabaseUnavailable, Sql> => {
  const limit = Math.min(MAX_LIMIT, Math.max(1, Math.floor(options.limit ?? DEFAULT_LIMIT)))
  const params: Array<unknown> = [tenant]
  const where = [`tenant_id = $1`]
  const filter = (condition: (n: number) => string, value: string | undefined) => {
    if (value === undefined) return
    params.push(value)
    where.push(condition(params.length))
  }
  filter((n) => `action = $${n}`, options.action)
  filter((n) => `at >= $${n}::timestamptz`, options.since)
  filter((n) => `id < $${n}`, options.cursor)
  params.push(limit + 1)
  return Effect.map(
    queryAs<AuditEntryResponse>(
      tenant,
      `select ${COLUMNS} from audit_events where ${where.join(" and ")} order by id desc limit $${params.length}`,
      params
    ),
    (rows) => {
      const items = rows.slice(0, limit)
      return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.id : null }
    }
  )
}
