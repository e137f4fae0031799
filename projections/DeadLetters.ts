// Dead letters: the stream positions a projector skipped because it could not decode the event or the database
// refused to store it, with why, so one bad event never holds up the projection of every later one (ADR 0022).
import { Effect, Metric } from "effect"
import type * as Envelope from "../schema/Envelope.ts"
import type { CorruptEvent, DatabaseUnavailable, UnknownEventVersion } from "../schema/Errors.ts"
import { Sql, sqlState, type SqlPort } from "./Sql.ts"

/** A message the projector could not decode: dead-lettered where it would have been applied. */
export interface Undecodable {
  readonly seq: number
  readonly subject: string
  /** The envelope's `type` when the message is JSON with one, for the operator's eyes. */
  readonly type: string | null
  readonly error: UnknownEventVersion | CorruptEvent
}

/** What a projector reads at one stream position: an event, or a message it could not decode. */
export type Item = Envelope.Stored | Undecodable

export const isUndecodable = (item: Item): item is Undecodable => "error" in item

/** A dead letter as it is recorded and listed. Never the event's payload. */
export interface DeadLetter {
  readonly projector: string
  readonly stream: string
  readonly seq: number
  readonly tenant: string
  readonly subject: string
  readonly eventType: string | null
  readonly reason: string
  readonly failedAt: string
}

export const MAX_REASON = 300

/** Text the database stores whatever it holds: no NUL, no lone surrogate (each would be refused in turn). */
const storable = (s: string, max: number) =>
  s.replace(/\u0000/g, "").slice(0, max)
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD")

/**
 * A reason without the quoted parts of the message: a database message may quote the value it refused
 * (`invalid input syntax for type integer: "…"`), and a dead letter says why, never what the payload held.
 */
const redacted = (s: string) => storable(s.replace(/"[^"]*"|'[^']*'/g, "\"…\""), MAX_REASON)

/** `lantern.<type>.<tenant>.<id>`: the tenant of a message whose envelope could not be read. */
const tenantOfSubject = (subject: string) => subject.split(".")[2] ?? ""

/** Why an event is a dead letter: the SQLSTATE and message of the database's refusal, or the decoding failure. */
export const reasonOf = (error: DatabaseUnavailable | UnknownEventVersion | CorruptEvent): string => {
  switch (error._tag) {
    case "DatabaseUnavailable": {
      const code = sqlState(error)
      const message = error.reason.replace(/ \(SQLSTATE [0-9A-Z]{5}\)$/, "")
      return redacted(code === null ? message : `SQLSTATE ${code}: ${message}`)
    }
    case "UnknownEventVersion":
      return redacted(`unknown event version: ${error.type} v${error.version} is not known to this version of Lantern`)
    case "CorruptEvent":
      // the decoder's issues name fields and expectations; a JSON parse error may quote the payload, which is dropped
      return redacted(`undecodable event: ${error.reason}`)
  }
}

/** The dead letter of one stream position. */
export const of = (
  projector: string,
  stream: string,
  item: Item,
  error: DatabaseUnavailable | UnknownEventVersion | CorruptEvent,
  failedAt: string
): DeadLetter => ({
  projector,
  stream,
  seq: item.seq,
  tenant: storable(isUndecodable(item) ? tenantOfSubject(item.subject) : item.envelope.tenant, 200),
  subject: storable(item.subject, 500),
  eventType: isUndecodable(item) ? (item.type === null ? null : storable(item.type, 100)) : item.envelope.type,
  reason: reasonOf(error),
  failedAt
})

/** Records dead letters in the projector's transaction; a position recorded before (a redelivery) stays as it was. */
export const record = (tx: SqlPort, letters: ReadonlyArray<DeadLetter>): Effect.Effect<void, DatabaseUnavailable> =>
  Effect.forEach(letters, (d) =>
    tx.query(
      `insert into projector_dead_letters (projector, stream, seq, tenant_id, subject, event_type, reason, failed_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz)
       on conflict (projector, stream, seq) do nothing`,
      [d.projector, d.stream, d.seq, d.tenant, d.subject, d.eventType, d.reason, d.failedAt]
    ), { discard: true })

/** Dead letters recorded by this process, by projector: an alert, not unreadiness. */
export const counter = Metric.counter("lantern.projector.dead_letters", {
  description: "Events a projector skipped because it could not decode or store them (projector_dead_letters)",
  incremental: true
})

/** Logs each dead letter (projector, tenant, seq, reason; never the payload) and counts it, once it is committed. */
export const report = (letters: ReadonlyArray<DeadLetter>): Effect.Effect<void> =>
  Effect.forEach(
    letters,
    (d) =>
      Effect.logWarning(`${d.projector}: dead-lettered #${d.seq} of ${d.stream} (tenant ${d.tenant}): ${d.reason}`)
        .pipe(
          Effect.annotateLogs({ projector: d.projector, tenant_id: d.tenant, seq: d.seq, stream: d.stream }),
          Effect.andThen(Metric.update(Metric.withAttributes(counter, { projector: d.projector }), 1))
        ),
    { discard: true }
  )

const COLUMNS = `projector, stream, seq, tenant_id as tenant, subject, event_type as "eventType", reason,
  to_char(failed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "failedAt"`

export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1000

/** How many dead letters there are, every tenant's: /readyz shows it. */
export const count: Effect.Effect<number, DatabaseUnavailable, Sql> = Effect.gen(function*() {
  const rows = yield* (yield* Sql).query<{ n: number }>(`select count(*)::int8 as n from projector_dead_letters`)
  return rows[0]?.n ?? 0
})

/** Every tenant's dead letters, newest first: the operator's view, read on the system path. */
export const list = (limit = DEFAULT_LIMIT): Effect.Effect<ReadonlyArray<DeadLetter>, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    return yield* (yield* Sql).query<DeadLetter>(
      `select ${COLUMNS} from projector_dead_letters order by failed_at desc, projector, stream, seq desc limit $1`,
      [Math.min(MAX_LIMIT, Math.max(1, Math.floor(limit)))]
    )
  })
