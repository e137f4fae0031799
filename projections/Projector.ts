// Projectors: JetStream consumers that fold the runs, agents and audit streams into Postgres, each batch in
// one transaction together with the stream sequence it reached, so redelivery and replay converge. An event
// that cannot be decoded or stored becomes a dead letter instead of stopping the projection (ADR 0022).
import { Cause, Clock, Data, Effect, Layer, Schedule, Stream } from "effect"
import type { Nats } from "../bus/Nats.ts"
import * as Ordered from "../bus/Ordered.ts"
import * as Retry from "../bus/Retry.ts"
import * as Topology from "../bus/Topology.ts"
import * as Envelope from "../schema/Envelope.ts"
import { BusUnavailable, type DatabaseUnavailable } from "../schema/Errors.ts"
import * as DeadLetters from "./DeadLetters.ts"
import * as Fold from "./Fold.ts"
import { isDataError, Sql, type SqlPort, type Statement } from "./Sql.ts"

/** Each projector: the stream it reads and the tables it owns (emptied by `rebuild`, children first). */
export const definitions = {
  "projector-runs": { stream: Topology.RUNS, tables: ["steps", "runs"] },
  "projector-agents": { stream: Topology.AGENTS, tables: ["agent_versions", "agents"] },
  "projector-audit": { stream: Topology.AUDIT, tables: ["audit_events"] }
} as const satisfies Record<string, { readonly stream: string; readonly tables: ReadonlyArray<string> }>

/** A projector's name, which is also its checkpoint's key. */
export type Name = keyof typeof definitions
export const names = Object.keys(definitions) as ReadonlyArray<Name>

/**
 * The most events one transaction applies (ADR 0081). A batch under load takes a few turns of the host's event loop
 * whatever its size (its statements go out in one pipeline, but a busy loop turns every 50-200 ms at 200 runs in
 * flight), so the batch has to be large for the projectors to keep up: with 256, they fell behind by thousands of
 * events within seconds; with 2048 they stay about a second behind. A quiet host's batches stay small: the window
 * ends them first.
 */
export const BATCH_SIZE = 2048
/**
 * How long a batch gathers events after its first one (ADR 0037). Each transaction costs a fixed few statements
 * besides its rows, on the host's own thread with PGlite: 100 ms makes batches five times larger than 20 ms did
 * under steady load, for at most 80 ms more before a list shows an event (a single run's GET folds its journal
 * when its row lags, ADR 0008; live events come from the journal).
 */
export const BATCH_WINDOW = "100 millis"

export interface Applied {
  /** Events written in this call. */
  readonly applied: number
  /** Events at or below the checkpoint, skipped as already applied. */
  readonly skipped: number
  /** The projector's checkpoint after the call. */
  readonly checkpoint: number
  /** Positions written as dead letters in this call instead of being applied (ADR 0022). */
  readonly deadLetters: ReadonlyArray<DeadLetters.DeadLetter>
}

/** The last stream sequence a projector has applied, 0 when it has none. */
export const checkpoint = (projector: Name, stream: string): Effect.Effect<number, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    const rows = yield* (yield* Sql).query<{ last_seq: number }>(
      `select last_seq from projector_checkpoints where projector = $1 and stream = $2`,
      [projector, stream]
    )
    return rows[0]?.last_seq ?? 0
  })

/**
 * How one transaction writes the fresh part of a batch: the dead letters it recorded, and the statements still to
 * run, which go out with the checkpoint's in one pipeline.
 */
type Writer = (
  tx: SqlPort,
  fresh: ReadonlyArray<DeadLetters.Item>,
  failedAt: string
) => Effect.Effect<{
  readonly deadLetters: ReadonlyArray<DeadLetters.DeadLetter>
  readonly statements: ReadonlyArray<Statement>
}, DatabaseUnavailable>

/** One transaction: lock and check the checkpoint, write what is past it with `write`, move the checkpoint. */
const inTransaction = (
  projector: Name,
  stream: string,
  batch: ReadonlyArray<DeadLetters.Item>,
  committed: number,
  write: Writer
): Effect.Effect<Applied, DatabaseUnavailable | CheckpointWentBack, Sql> =>
  Effect.gen(function*() {
    const sql = yield* Sql
    const failedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
    return yield* sql.transaction((tx) =>
      Effect.gen(function*() {
        // `for update` makes two applies of one projector take turns instead of interleaving.
        const rows = yield* tx.query<{ last_seq: number }>(
          `select last_seq from projector_checkpoints where projector = $1 and stream = $2 for update`,
          [projector, stream]
        )
        const before = rows[0]?.last_seq ?? 0
        if (before < committed) return yield* new CheckpointWentBack({ projector, from: committed, to: before })
        const fresh = batch.filter((s) => s.seq > before).sort((a, b) => a.seq - b.seq)
        if (fresh.length === 0) return { applied: 0, skipped: batch.length, checkpoint: before, deadLetters: [] }
        const { deadLetters, statements } = yield* write(tx, fresh, failedAt)
        const last = fresh[fresh.length - 1]!.seq
        yield* tx.queries([...statements, {
          text: `insert into projector_checkpoints (projector, stream, last_seq) values ($1, $2, $3)
           on conflict (projector, stream) do update set last_seq = excluded.last_seq`,
          params: [projector, stream, last]
        }])
        return {
          applied: fresh.length - deadLetters.length,
          skipped: batch.length - fresh.length,
          checkpoint: last,
          deadLetters
        }
      })
    )
  })

/**
 * A port that keeps the statements it is given instead of running them, answering each with no rows: for folds,
 * which only write. They then go out in one pipeline (`SqlPort.queries`) instead of one round trip each, which on
 * a busy host cost a turn of its event loop apiece: with ten of them, a projector fell behind by thousands of
 * events at 200 runs in flight.
 */
const deferring = (dialect: SqlPort["dialect"]) => {
  const statements: Array<Statement> = []
  const port: SqlPort = {
    dialect,
    query: (text, params = []) => Effect.sync(() => void statements.push({ text, params })).pipe(Effect.as([])),
    queries: (more) =>
      Effect.sync(() => {
        statements.push(...more)
        return more.map(() => [])
      }),
    transaction: () => Effect.die(new Error("a deferring port runs no transaction (a fold uses none)"))
  }
  return { port, statements }
}

/** The whole batch's events folded together; undecodable messages become dead letters. */
const wholeBatch = (projector: Name, stream: string): Writer => (tx, fresh, failedAt) =>
  Effect.gen(function*() {
    const deferred = deferring(tx.dialect)
    const events = fresh.filter((item): item is Envelope.Stored => !DeadLetters.isUndecodable(item))
    yield* Fold.batch(deferred.port, events)
    const letters = fresh.filter(DeadLetters.isUndecodable).map((u) =>
      DeadLetters.of(projector, stream, u, u.error, failedAt)
    )
    yield* DeadLetters.record(deferred.port, letters)
    return { deadLetters: letters, statements: deferred.statements }
  })

/**
 * Each event under its own savepoint: one the database refuses for its data is rolled back alone and becomes a
 * dead letter, and the events around it are applied. An unavailable database still fails the whole transaction.
 */
const oneByOne = (projector: Name, stream: string): Writer => (tx, fresh, failedAt) =>
  Effect.gen(function*() {
    const letters: Array<DeadLetters.DeadLetter> = []
    for (const item of fresh) {
      if (DeadLetters.isUndecodable(item)) {
        letters.push(DeadLetters.of(projector, stream, item, item.error, failedAt))
        continue
      }
      const folded = yield* Effect.result(tx.transaction((sp) => Fold.event(sp, item)))
      if (folded._tag === "Failure") {
        if (!isDataError(folded.failure)) return yield* Effect.fail(folded.failure)
        letters.push(DeadLetters.of(projector, stream, item, folded.failure, failedAt))
      }
    }
    yield* DeadLetters.record(tx, letters)
    return { deadLetters: letters, statements: [] }
  })

/**
 * Applies a batch of stored events in one transaction and records the last sequence in the same one. Events
 * at or below the checkpoint are skipped, so a redelivered batch changes nothing. Undecodable messages are
 * recorded as dead letters. When the database refuses the batch for its data (Sql.isDataError), the batch is
 * applied again event by event, and each event it refuses becomes a dead letter: the checkpoint moves past it.
 */
export const apply = (
  projector: Name,
  stream: string,
  batch: ReadonlyArray<DeadLetters.Item>,
  /** The checkpoint this reader saw committed last: a lower one in the database means it lost commits. */
  committed = 0
): Effect.Effect<Applied, DatabaseUnavailable | CheckpointWentBack, Sql> =>
  inTransaction(projector, stream, batch, committed, wholeBatch(projector, stream)).pipe(
    Effect.catchIf(
      (e): e is DatabaseUnavailable => e._tag === "DatabaseUnavailable" && isDataError(e),
      (e) =>
        Effect.andThen(
          Effect.logWarning(
            `${projector}: the database refused a batch of ${batch.length} for its data (${
              DeadLetters.reasonOf(e)
            }); applying it event by event`
          ),
          inTransaction(projector, stream, batch, committed, oneByOne(projector, stream))
        )
    ),
    Effect.withSpan("Projector.apply", {
      attributes: { "lantern.projector": projector, "lantern.events": batch.length }
    }, { captureStackTrace: false })
  )

/**
 * The database's checkpoint is behind what this reader committed: it came back without commits it had
 * confirmed (a failover to a lagging replica, a restore). The reader starts again from the database's
 * checkpoint, so the lost rows are projected again.
 */
export class CheckpointWentBack extends Data.TaggedError("CheckpointWentBack")<{
  readonly projector: string
  readonly from: number
  readonly to: number
}> {
  override get message() {
    return `${this.projector}: the database checkpoint went back from #${this.from} to #${this.to}; reading again from it`
  }
}

/** Capped exponential backoff: 100 ms doubling up to 5 s between attempts, for as long as it takes. */
const backoff = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")])

/** A message as an item to apply: its event, or why it cannot be decoded (and its `type` if that much is readable). */
const decodeItem = (m: Ordered.Message): Effect.Effect<DeadLetters.Item> =>
  Envelope.decode(m.subject, m.seq, m.string()).pipe(
    Effect.catch((error) =>
      Effect.sync((): DeadLetters.Undecodable => {
        let type: string | null = null
        try {
          const parsed: unknown = JSON.parse(m.string())
          const t = parsed !== null && typeof parsed === "object" ? (parsed as { type?: unknown }).type : undefined
          if (typeof t === "string") type = t
        } catch {
          // not JSON: no type to show
        }
        return { seq: m.seq, subject: m.subject, type, error }
      })
    )
  )

/**
 * Applies a batch, undecodable messages and events the database refuses included (as dead letters), retrying
 * while the database is unavailable (nothing later is read meanwhile). Dead letters are logged and counted
 * once committed.
 */
const handleBatch = (projector: Name, messages: ReadonlyArray<Ordered.Message>, reader: { committed: number }) =>
  Effect.gen(function*() {
    const { stream } = definitions[projector]
    const items = yield* Effect.forEach(messages, decodeItem)
    const applied = yield* apply(projector, stream, items, reader.committed).pipe(
      Effect.tapError((e) =>
        e._tag === "DatabaseUnavailable"
          ? Effect.logWarning(`${projector}: ${e.message}; retrying the batch`)
          : Effect.void
      ),
      (e) => Retry.afterFailure(e, { schedule: backoff, while: (e) => e._tag === "DatabaseUnavailable" })
    )
    reader.committed = applied.checkpoint
    yield* DeadLetters.report(applied.deadLetters)
  })

/**
 * The projector's events from the database's checkpoint on, in stream order. An ordered consumer (ephemeral,
 * recreated by the client on any gap) is used instead of a durable one: the checkpoint committed with the
 * rows is the only position, so rows lost with the database (an embedded database killed before its writes
 * reached disk, a restore from backup) are projected again once the reader subscribes again, and a redelivery can never arrive after
 * later events and be skipped. A database that comes back behind what this reader committed is caught by
 * the checkpoint check in `apply` and read again from its own checkpoint. The stream stops on missed heartbeats
 * or a reconnect, or after catching up through the stream leader when no consumer could be created in time: the
 * retry in `consume` subscribes again from the checkpoint, so the projections keep up however many tries the
 * consumer takes.
 */
const fromCheckpoint = (
  projector: Name
): Stream.Stream<Ordered.Message, DatabaseUnavailable | BusUnavailable, Sql | Nats> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const { stream } = definitions[projector]
      const reached = yield* checkpoint(projector, stream)
      yield* Effect.logInfo(`${projector}: reading ${stream} from #${reached + 1}`)
      return Ordered.fromSeq(stream, reached + 1, BATCH_SIZE, projector)
    })
  )

const consume = (projector: Name): Effect.Effect<never, never, Sql | Nats> =>
  Effect.suspend(() => {
    const reader = { committed: 0 }
    return fromCheckpoint(projector).pipe(
      Stream.groupedWithin(BATCH_SIZE, BATCH_WINDOW),
      Stream.mapEffect((messages) => handleBatch(projector, messages, reader)),
      Stream.runDrain
    )
  }).pipe(
    // The consumer's iterator only ends when the consumer went away (a catch-up ends when it is done): subscribe again.
    Effect.andThen(
      Effect.fail(new BusUnavailable({ operation: `consume ${projector}`, reason: "the consumer stopped" }))
    ),
    // every failure here is an outage (bus, database) or a checkpoint that went back: subscribe again from the checkpoint
    Effect.tapError((e) => Effect.logWarning(`${projector}: ${e.message}; subscribing again`)),
    Effect.retry({ schedule: backoff })
  ) as Effect.Effect<never, never, Sql | Nats>

/**
 * Runs every projector until interrupted, each from its checkpoint. Database and bus outages are retried and
 * resume from the checkpoint, so nothing is lost; an event this code cannot decode, or that the database refuses
 * for its data, is recorded as a dead letter and skipped, so it never holds up later events. A second instance
 * on the same database is harmless (the checkpoint row lock makes their batches take turns and each skips what
 * the other applied) but useless.
 */
export const run: Effect.Effect<never, never, Sql | Nats> = Effect.all(
  names.map(consume),
  { concurrency: "unbounded", discard: true }
).pipe(Effect.andThen(Effect.never), Effect.withSpan("Projector.run"))

/** The projectors in the background of the layer's scope; a stop other than interruption is logged as an error. */
export const layer: Layer.Layer<never, never, Sql | Nats> = Layer.effectDiscard(
  Effect.forkScoped(
    run.pipe(
      Effect.tapCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("projectors stopped", Cause.pretty(cause))
      )
    )
  )
)

/**
 * Deletes a projector's rows, checkpoint and dead letters. Stop `run` first: its next start replays the stream
 * from the first event (dead-lettered events get another chance, with the code of the day).
 */
export const rebuild = (projector: Name): Effect.Effect<void, DatabaseUnavailable, Sql> =>
  Effect.gen(function*() {
    const sql = yield* Sql
    yield* sql.transaction((tx) =>
      Effect.gen(function*() {
        for (const table of definitions[projector].tables) yield* tx.query(`delete from ${table}`)
        yield* tx.query(`delete from projector_checkpoints where projector = $1`, [projector])
        yield* tx.query(`delete from projector_dead_letters where projector = $1`, [projector])
      })
    )
  }).pipe(Effect.withSpan("Projector.rebuild", { attributes: { "lantern.projector": projector } }))
