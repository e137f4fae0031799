// Live model tokens on core NATS (ADR 0061): published fire-and-forget on `lantern.tokens.<tenant>.<runId>`, no
// stream captures them, and only while someone watches the run (ADR 0066). The journal keeps the answer.
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Frame, Interest } from "../schema/Tokens.ts"
import { Nats, unavailable } from "./Nats.ts"

/** How long a subscription made by `follow` waits for its stream to be run before it is dropped. */
export const UNCLAIMED_MS = 30_000
/** How often a follow renews its interest in the run. */
export const RENEW_MS = 2_000
/** How long an interest lasts unless renewed: three renewals may be lost before a host forgets a watcher. */
export const INTEREST_TTL_MS = 6_000
/** The longest interest a host takes from an announcement, whatever it asks. */
const MAX_INTEREST_TTL_MS = 60_000

export const subjectOf = (tenant: string, runId: string) => `lantern.tokens.${tenant}.${runId}`
/** Where watchers announce their interest in a run's tokens: five tokens, so no run's token subject matches it. */
export const watchSubjectOf = (tenant: string, runId: string) => `lantern.tokens.watch.${tenant}.${runId}`
const WATCH_SUBJECTS = "lantern.tokens.watch.*.*"

// a frame is plain JSON of our own making: no schema on the way out, where it would cost most of a publish
const encode = (frame: Frame | Interest): string => JSON.stringify(frame)
const decode = Schema.decodeUnknownOption(Schema.fromJsonString(Frame))
const decodeInterest = Schema.decodeUnknownOption(Schema.fromJsonString(Interest))
const utf8 = new TextDecoder()

/** The runs watched, as this host heard: run → watcher → until when (performance.now() ms). */
const makeInterests = () => {
  const runs = new Map<string, Map<string, number>>()
  const expire = (run: string, watchers: Map<string, number>, now: number) => {
    for (const [w, until] of watchers) if (until <= now) watchers.delete(w)
    if (watchers.size === 0) runs.delete(run)
  }
  return {
    note: (run: string, watcher: string, ttlMs: number) => {
      const until = performance.now() + Math.min(MAX_INTEREST_TTL_MS, Math.max(0, ttlMs))
      const watchers = runs.get(run)
      if (watchers === undefined) runs.set(run, new Map([[watcher, until]]))
      else watchers.set(watcher, Math.max(until, watchers.get(watcher) ?? 0))
    },
    drop: (run: string, watcher: string) => {
      const watchers = runs.get(run)
      if (watchers === undefined) return
      watchers.delete(watcher)
      if (watchers.size === 0) runs.delete(run)
    },
    watched: (run: string): boolean => {
      const watchers = runs.get(run)
      if (watchers === undefined) return false
      const now = performance.now()
      for (const until of watchers.values()) if (until > now) return true
      expire(run, watchers, now)
      return false
    },
    /** Forgets every lapsed interest (a watcher that went without saying so). */
    sweep: () => {
      const now = performance.now()
      for (const [run, watchers] of runs) expire(run, watchers, now)
    }
  }
}

export interface Options {
  readonly unclaimedMs: number
  /** How often a follow renews its interest (RENEW_MS). */
  readonly renewMs?: number
  /** How long a follow's interest lasts unless renewed (INTEREST_TTL_MS). */
  readonly interestTtlMs?: number
}

export class Tokens extends Context.Service<Tokens, {
  /** Publishes a frame; never fails nor waits (a bus away drops it: tokens are only a preview). */
  readonly publish: (tenant: string, runId: string, frame: Frame) => void
  /**
   * Whether someone, on any host, follows the run's tokens now (as this host last heard; no bus round trip). A
   * run's frames are worth publishing only then.
   */
  readonly watched: (tenant: string, runId: string) => boolean
  /**
   * Subscribes to the run's frames and announces the interest to every host, renewed until the stream ends: every
   * frame published after this succeeds is in the stream (earlier ones are gone); malformed messages are skipped.
   */
  readonly follow: (
    tenant: string,
    runId: string
  ) => Effect.Effect<Stream.Stream<Frame, BusUnavailable>, BusUnavailable>
}>()("lantern/bus/Tokens") {
  static readonly layer = Layer.suspend(() => Tokens.layerWith({ unclaimedMs: UNCLAIMED_MS }))
  static readonly layerWith = (options: Options) =>
    Layer.effect(
      Tokens,
      Effect.gen(function*() {
        const { nc } = yield* Nats
        const renewMs = options.renewMs ?? RENEW_MS
        const ttlMs = options.interestTtlMs ?? INTEREST_TTL_MS
        const interests = makeInterests()
        const runOf = (tenant: string, runId: string) => `${tenant}.${runId}`

        // every host hears every announcement: one subscription, kept for the host's life
        yield* Effect.acquireRelease(
          Effect.try({
            try: () =>
              nc.subscribe(WATCH_SUBJECTS, {
                callback: (err, m) => {
                  if (err !== null) return
                  const parts = m.subject.split(".")
                  const interest = decodeInterest(utf8.decode(m.data))
                  if (Option.isNone(interest)) return
                  const run = runOf(parts[3]!, parts[4]!)
                  if ("end" in interest.value) interests.drop(run, interest.value.watcher)
                  else interests.note(run, interest.value.watcher, interest.value.ttlMs)
                }
              }),
            catch: unavailable("hear who watches live tokens")
          }),
          (sub) => Effect.sync(() => sub.unsubscribe())
        )
        const sweeping = setInterval(interests.sweep, ttlMs)
        sweeping.unref?.()
        yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sweeping)))

        const send = (subject: string, message: Frame | Interest) => {
          try {
            nc.publish(subject, encode(message))
          } catch {
            // a closed or draining connection: the preview (or the interest in it) is lost, the run is not
          }
        }

        return Tokens.of({
          publish: (tenant, runId, frame) => send(subjectOf(tenant, runId), frame),
          watched: (tenant, runId) => interests.watched(runOf(tenant, runId)),
          follow: (tenant, runId) =>
            Effect.gen(function*() {
              const sub = yield* Effect.try({
                try: () => nc.subscribe(subjectOf(tenant, runId)),
                catch: unavailable("follow live tokens")
              })
              const run = runOf(tenant, runId)
              const watcher = randomBytes(12).toString("base64url")
              const watchSubject = watchSubjectOf(tenant, runId)
              // this host knows at once; the others as soon as the announcement reaches them, and the run's sink
              // keeps its text until then (actors/run/TokenSink.ts), so a watch that begins mid-step loses nothing
              const announce = () => {
                interests.note(run, watcher, ttlMs)
                send(watchSubject, { watcher, ttlMs })
              }
              announce()
              const renewing = setInterval(announce, renewMs)
              renewing.unref?.()
              let ended = false
              const end = () => {
                if (ended) return
                ended = true
                clearInterval(renewing)
                sub.unsubscribe()
                interests.drop(run, watcher)
                send(watchSubject, { watcher, end: true })
              }
              // once the server has the subscription, every frame published after this returns is delivered
              yield* Effect.tryPromise({ try: () => nc.flush(), catch: unavailable("follow live tokens") }).pipe(
                Effect.tapError(() => Effect.sync(end))
              )
              // the stream ends the subscription; one that is never run (its client went away before the response
              // began) would keep it for ever, so an unclaimed subscription is dropped after a while
              let claimed = false
              const unclaimed = setTimeout(() => {
                if (!claimed) end()
              }, options.unclaimedMs)
              unclaimed.unref?.()
              return Stream.unwrap(Effect.sync(() => {
                claimed = true
                clearTimeout(unclaimed)
                return Stream.fromAsyncIterable(sub, unavailable("follow live tokens"))
              })).pipe(
                Stream.map((m) => decode(utf8.decode(m.data))),
                Stream.filter(Option.isSome),
                Stream.map((o) => o.value),
                Stream.ensuring(Effect.sync(end))
              )
            })
        })
      })
    )
}
