// Which subjects of a stream hold messages, known in memory and kept current by a watch: a reader can tell "no
// journal here" without a request. Used where most lookups would find nothing (budgets: most scopes have none).
import { DeliverPolicy } from "@nats-io/jetstream"
import { Duration, Effect, Schedule, Stream } from "effect"
import { Nats, unavailable } from "./Nats.ts"
import * as Ordered from "./Ordered.ts"

export interface Present {
  /** Whether `subject` holds a message; `undefined` while the watch is not current (ask the bus then). */
  readonly has: (subject: string) => boolean | undefined
  /**
   * The stream sequence of `subject`'s last message as the watch knows it: `undefined` while the watch is not
   * current, 0 when the subject holds no message, `null` when it holds some but the watch has seen none of them
   * since it (re)started (the stream's info lists subjects, not their sequences: ask the bus once, then `learn`).
   * The watch trails the server by the time a message takes to reach it: a reader that just wrote knows better.
   */
  readonly lastSeq: (subject: string) => number | null | undefined
  /** How many times the watch has (re)started; pass it to `learn` as it was before the lookup. */
  readonly generation: () => number
  /**
   * Records `seq`, read from the bus, as `subject`'s last sequence, unless the watch restarted since `generation`
   * (a message stored in between may be in neither the listing nor the watch) or has seen a message of it since.
   */
  readonly learn: (subject: string, seq: number, generation: number) => void
}

/**
 * Watches the subjects of `stream` under `filter`: each new message's subject (an ordered, headers-only consumer
 * from now on), then the subjects already there (the stream's info). Started in that order, so no subject is
 * missed between the two. When the watch ends (a gap, a reconnect, the bus away) it is not current until it has
 * started again; readers then fall back to asking the bus.
 */
export const watch = (
  stream: string,
  filter: string,
  reader: string,
  listener: {
    /** A message was stored on `subject` (called in stream order while the watch is current). */
    readonly onMessage?: (subject: string) => void
    /** The watch (re)started: anything derived from messages it may have missed is to be forgotten. */
    readonly onRestart?: () => void
  } = {}
) =>
  Effect.gen(function*() {
    const { nc, jsm } = yield* Nats
    const subjects = new Set<string>()
    // the last sequence seen of each subject since the watch (re)started
    const seqs = new Map<string, number>()
    let current = false
    let generation = 0
    const once = Effect.gen(function*() {
      const messages = yield* Effect.tryPromise({
        try: () =>
          Ordered.consume(nc, stream, {
            filter_subjects: filter,
            deliver_policy: DeliverPolicy.New,
            headers_only: true
          }, 256),
        catch: unavailable(`watch ${stream} for ${reader}`)
      })
      const info = yield* Effect.tryPromise({
        try: () => jsm.streams.info(stream, { subjects_filter: filter }),
        catch: unavailable(`subjects of ${stream} for ${reader}`)
      })
      for (const subject of Object.keys(info.state.subjects ?? {})) subjects.add(subject)
      listener.onRestart?.()
      generation++
      current = true
      yield* Stream.fromAsyncIterable(messages, unavailable(`watch ${stream} for ${reader}`)).pipe(
        Stream.runForEach((m) =>
          Effect.sync(() => {
            subjects.add(m.subject)
            seqs.set(m.subject, m.seq)
            listener.onMessage?.(m.subject)
          })
        ),
        Effect.ensuring(Effect.sync(() => {
          current = false
          seqs.clear()
          Ordered.stop(messages)
        }))
      )
    })
    yield* once.pipe(
      Effect.catchCause((cause) => Effect.logDebug(`${reader}: subject watch on ${stream} ended`, cause)),
      Effect.repeat(Schedule.spaced(Duration.millis(250))),
      Effect.forkScoped
    )
    return {
      has: (subject) => (current ? subjects.has(subject) : undefined),
      lastSeq: (subject) => (current ? (seqs.get(subject) ?? (subjects.has(subject) ? null : 0)) : undefined),
      generation: () => generation,
      learn: (subject, seq, before) => {
        if (current && generation === before && !seqs.has(subject)) {
          seqs.set(subject, seq)
          if (seq > 0) subjects.add(subject)
        }
      }
    } satisfies Present
  })
