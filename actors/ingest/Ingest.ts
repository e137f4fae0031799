// Events published to NATS by anyone (ADR 0051): the ingest stream (LANTERN_INGEST, `lantern.ingest.<tenant>.<source>`),
// the consumer that checks each message against the contract (Contract.ts), dead-letters what fails with the reason
// (LANTERN_INGEST_DEAD, `lantern.ingest-dead.<tenant>.<source>`, the message kept whole), dedupes the rest for good by
// (tenant, source, eventId) in the KV bucket `lantern-ingest-seen`, and routes each new event by the tenant's rules
// (KV `lantern-ingest-rules`) to runs, or only records it.
import { createHash, randomBytes } from "node:crypto"
import { Clock, Context, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import * as Consumer from "../../bus/Consumer.ts"
import * as Kv from "../../bus/Kv.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import * as Streams from "../../bus/Streams.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"
import { type DeadLetter, type NewRule, type RuleView, RuleView as RuleSchema } from "../../schema/Ingest.ts"
import { encode } from "../../schema/Ids.ts"
import { Runs } from "../run/Runs.ts"
import * as Contract from "./Contract.ts"

export const INGEST = "LANTERN_INGEST"
export const INGEST_DEAD = "LANTERN_INGEST_DEAD"
export const subjectOf = (tenant: string, source: string) => `lantern.ingest.${tenant}.${source}`
export const deadSubjectOf = (tenant: string, source: string) => `lantern.ingest-dead.${tenant}.${source}`

/** How much of a dead message is kept in its dead letter (the ingest stream keeps it whole). */
export const DEAD_DATA_BYTES = 64 * 1024

const Seen = Schema.Struct({
  at: Schema.String,
  type: Schema.String,
  runs: Schema.Array(Schema.String),
  recorded: Schema.Boolean
})
const seenBucket = Kv.bucket({
  name: "lantern-ingest-seen",
  value: Schema.fromJsonString(Seen),
  what: "an ingested event"
})
const rulesBucket = Kv.bucket({
  name: "lantern-ingest-rules",
  value: Schema.fromJsonString(RuleSchema),
  what: "an ingest rule"
})

const sha = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 40)
/** The permanent dedupe key of an event: its tenant, source and (hashed: any visible ASCII) eventId. */
export const seenKey = (tenant: string, source: string, eventId: string) => `${tenant}.${source}.${sha(eventId)}`

export class RuleNotFound extends Schema.TaggedError<RuleNotFound>()("RuleNotFound", { id: Schema.String }) {
  override get message() {
    return `no ingest rule '${this.id}'`
  }
}

/** Creates the ingest streams if missing (safe on every start). */
export const applyStreams = Effect.all([
  Streams.ensure(INGEST, "lantern.ingest.>"),
  Streams.ensure(INGEST_DEAD, "lantern.ingest-dead.>")
], { discard: true })

export class Ingest extends Context.Service<Ingest, {
  readonly addRule: (tenant: string, rule: NewRule) => Effect.Effect<RuleView, BusUnavailable>
  readonly rules: (tenant: string) => Effect.Effect<ReadonlyArray<RuleView>, BusUnavailable>
  readonly removeRule: (tenant: string, id: string) => Effect.Effect<void, RuleNotFound | BusUnavailable>
  /** The tenant's dead letters, oldest first, `limit` at most, and how many there are in all. */
  readonly dead: (
    tenant: string,
    options: { readonly source?: string; readonly limit: number }
  ) => Effect.Effect<{ readonly items: ReadonlyArray<DeadLetter>; readonly total: number }, BusUnavailable>
  /** Per source: events accepted (each once) and dead letters. */
  readonly sources: (
    tenant: string
  ) => Effect.Effect<ReadonlyArray<{ source: string; accepted: number; dead: number }>, BusUnavailable>
}>()("lantern/actors/ingest/Ingest") {
  static readonly layer = Layer.effect(
    Ingest,
    Effect.gen(function*() {
      yield* applyStreams
      const nats = yield* Nats
      const rules = yield* Kv.open(rulesBucket)
      const seen = yield* Kv.open(seenBucket)
      const listRules = (tenant: string) =>
        Effect.gen(function*() {
          const out: Array<RuleView> = []
          for (const key of yield* rules.keys(`${tenant}.*`)) {
            const entry = yield* rules.get(key).pipe(
              Effect.catchTag("CorruptValue", () => Effect.succeed(Option.none()))
            )
            if (Option.isSome(entry)) out.push(entry.value.value)
          }
          return out.sort((a, b) => (a.id < b.id ? -1 : 1))
        })
      return Ingest.of({
        addRule: (tenant, rule) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const view: RuleView = {
              id: `rule_${encode(now, new Uint8Array(randomBytes(16)))}`,
              source: rule.source,
              type: rule.type ?? null,
              agentName: rule.agentName,
              inputTemplate: rule.inputTemplate ?? null,
              action: rule.action ?? "run",
              createdAt: new Date(now).toISOString()
            }
            yield* rules.put(`${tenant}.${view.id}`, view)
            return view
          }),
        rules: listRules,
        removeRule: (tenant, id) =>
          Effect.gen(function*() {
            const key = `${tenant}.${id}`
            if (
              !/^rule_[0-9a-z]{26}$/.test(id) ||
              Option.isNone(yield* rules.get(key).pipe(Effect.orElseSucceed(() => Option.none())))
            ) {
              return yield* new RuleNotFound({ id })
            }
            yield* rules.delete(key)
          }),
        dead: (tenant, { source, limit }) =>
          Effect.gen(function*() {
            const filter = deadSubjectOf(tenant, source ?? "*")
            const total = Object.values(
              yield* Streams.counts(INGEST_DEAD, filter).pipe(Effect.provideService(Nats, nats))
            ).reduce((n, c) => n + c, 0)
            if (total === 0) return { items: [], total }
            const read = yield* Streams.read(INGEST_DEAD, filter, Math.min(limit, total)).pipe(
              Effect.provideService(Nats, nats)
            )
            const items = read.map((m): DeadLetter => ({
              ...(JSON.parse(m.text) as Omit<DeadLetter, "seq">),
              seq: m.seq
            }))
            return { items, total }
          }),
        sources: (tenant) =>
          Effect.gen(function*() {
            const counts = new Map<string, { source: string; accepted: number; dead: number }>()
            const of = (source: string) => {
              const found = counts.get(source) ?? { source, accepted: 0, dead: 0 }
              counts.set(source, found)
              return found
            }
            for (const key of yield* seen.keys(`${tenant}.*.*`)) of(key.split(".")[1]!).accepted++
            const dead = yield* Streams.counts(INGEST_DEAD, deadSubjectOf(tenant, "*")).pipe(
              Effect.provideService(Nats, nats)
            )
            for (const [subject, n] of Object.entries(dead)) {
              of(subject.split(".")[3]!).dead += n
            }
            return [...counts.values()].sort((a, b) => (a.source < b.source ? -1 : 1))
          })
      })
    })
  )
}

// ---- the consumer ----

export const durable: Consumer.Durable = {
  stream: INGEST,
  durable: "ingest-router",
  ackWait: "10 seconds",
  maxAckPending: 1024,
  ackPolicy: "explicit"
}

const utf8 = new TextDecoder("utf-8", { fatal: true })
const asKept = (bytes: Uint8Array): { data: string; encoding: "utf8" | "base64" } => {
  const kept = bytes.subarray(0, DEAD_DATA_BYTES)
  try {
    return { data: utf8.decode(kept), encoding: "utf8" }
  } catch {
    return { data: Buffer.from(kept).toString("base64"), encoding: "base64" }
  }
}

/** The router of a host that drives runs: checks, dead-letters, dedupes and routes every ingested message. */
export const layerWorker = Layer.effectDiscard(
  Effect.gen(function*() {
    yield* applyStreams
    const { js } = yield* Nats
    const runs = yield* Runs
    const seen = yield* Kv.open(seenBucket)
    const rulesKv = yield* Kv.open(rulesBucket)
    // every tenant's rules in memory, kept current by a watch of the bucket: no read of the rules per event
    const live = new Map<string, RuleView>()
    yield* rulesKv.watch().pipe(
      Stream.runForEach((change) =>
        Effect.sync(() => {
          if (change._tag === "Put") live.set(change.key, change.value)
          else live.delete(change.key)
        })
      ),
      Effect.tapError((e) => Effect.logWarning(`ingest rules watch: ${e.message}; watching again`)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forkScoped
    )
    const rulesOf = (tenant: string) =>
      [...live.entries()].filter(([k]) => k.startsWith(`${tenant}.`)).map(([, r]) => r)

    const handle = (m: Consumer.Message) =>
      Effect.gen(function*() {
        const bytes = m.data
        const checked = Contract.check(m.subject, m.header("Nats-Msg-Id"), bytes)
        if (!checked.ok) {
          const now = new Date(yield* Clock.currentTimeMillis).toISOString()
          const tenant = checked.tenant ?? "_unknown"
          const source = checked.source ?? "_unknown"
          const letter: Omit<DeadLetter, "seq"> = {
            source,
            subject: m.subject,
            field: checked.field,
            reason: checked.reason,
            ...asKept(bytes),
            at: now
          }
          yield* Effect.tryPromise({
            try: () => js.publish(deadSubjectOf(tenant, source), JSON.stringify(letter), { msgID: `dead:${m.seq}` }),
            catch: unavailable("publish a dead letter")
          })
          return Consumer.Decision.Ack()
        }
        const { tenant, source, event } = checked
        const key = seenKey(tenant, source, event.eventId)
        const matching = rulesOf(tenant).filter((r) =>
          r.source === source && (r.type === null || r.type === event.type) &&
          (event.agentName === undefined || r.agentName === event.agentName)
        )
        const toRun = matching.filter((r) => r.action === "run")
        const record = (runIds: ReadonlyArray<string>) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            seen.create(key, {
              at: new Date(now).toISOString(),
              type: event.type,
              runs: runIds,
              recorded: matching.length > 0
            }))
        // nothing to start: marking the event seen is the whole of it (a duplicate finds the key taken)
        if (toRun.length === 0) {
          yield* record([])
          return Consumer.Decision.Ack()
        }
        if (Option.isSome(yield* seen.get(key).pipe(Effect.orElseSucceed(() => Option.none())))) {
          return Consumer.Decision.Ack()
        }
        const values = {
          eventId: event.eventId,
          type: event.type,
          source,
          occurredAt: event.occurredAt ?? null,
          data: event.data
        }
        const started: Array<string> = []
        for (const rule of toRun) {
          const input = rule.inputTemplate === null ? values : Contract.render(rule.inputTemplate, values)
          // the run's idempotency key is the event's: a redelivery before the event is marked seen is the same run
          const run = yield* runs.start(
            tenant,
            { agentName: rule.agentName, input },
            `ingest:${source}:${rule.id}:${event.eventId}`
          )
            .pipe(Effect.result)
          if (run._tag === "Success") started.push(run.success.run.id)
          else yield* Effect.logWarning(
              `ingest ${m.subject} ${event.eventId}: rule ${rule.id} did not start: ${run.failure._tag}`
            )
        }
        yield* record(started)
        return Consumer.Decision.Ack()
      })

    yield* Consumer.ensure(durable)
    yield* Consumer.run(durable, 64, handle).pipe(
      Effect.tapError((e) => Effect.logWarning(`ingest router: ${e.message}; starting again`)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.catchCause((cause) => Effect.logError("ingest router stopped", cause)),
      Effect.forkScoped
    )
  })
)
