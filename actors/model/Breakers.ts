// Circuit breakers for model providers, shared by every host through a KV bucket: after enough consecutive
// retryable failures a provider is skipped for a cooldown, then one caller anywhere gets a trial call.
// Writes are revision-checked; reads come from a local mirror fed by a watch, so a call costs no KV round trip.
import { Clock, Config, Context, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import * as Kv from "../../bus/Kv.ts"
import { BREAKERS_BUCKET } from "../../bus/Topology.ts"

/** One provider's breaker as the bucket holds it (key: the provider's name). */
export const State = Schema.Struct({
  state: Schema.Literals(["closed", "open", "half_open"]),
  /** Consecutive retryable failures (reset by a success). */
  failures: Schema.Int,
  /** Epoch ms the breaker last opened; 0 when it never has. */
  openedAt: Schema.Number,
  /** Open: when a trial may be made. Half-open: when an unfinished trial is given up and another may start. */
  until: Schema.Number,
  updatedAt: Schema.Number
})
export type State = typeof State.Type

/**
 * What a caller may do now: `closed` call as usual; `trial` call as the one half-open trial (its outcome
 * closes or re-opens the breaker); `open` skip the provider.
 */
export type Admission = "closed" | "trial" | "open"

export interface Settings {
  /** Consecutive retryable failures that open a breaker. */
  readonly failures: number
  /** How long an open breaker refuses calls before a trial. */
  readonly cooldownMs: number
}

export const settingsConfig = Config.all({
  failures: Config.Int("LANTERN_BREAKER_FAILURES").pipe(Config.withDefault(5)),
  cooldownMs: Config.Int("LANTERN_BREAKER_COOLDOWN_MS").pipe(Config.withDefault(30_000))
})

const StateJson = Schema.fromJsonString(State)
const decodeState = Schema.decodeUnknownOption(StateJson)

/** The `lantern-breakers` bucket: key = provider name. */
export const bucket = Kv.bucket({ name: BREAKERS_BUCKET, value: StateJson, what: "a circuit breaker" })

export const decode = (text: string): State | undefined => {
  const o = decodeState(text)
  return o._tag === "Some" ? o.value : undefined
}

// ---- decisions (pure) ----

/** What `current` lets a caller do at `now`. Taking a trial still needs the revision-checked write. */
export const admission = (current: State | undefined, now: number): Admission | "take_trial" => {
  if (current === undefined || current.state === "closed") return "closed"
  // open past its cooldown, or a half-open trial abandoned past its deadline: a trial may be taken
  return current.until <= now ? "take_trial" : "open"
}

export const closed = (now: number, openedAt = 0): State => ({
  state: "closed",
  failures: 0,
  openedAt,
  until: 0,
  updatedAt: now
})

/** The state after a retryable failure of a call admitted as `admitted`; undefined: nothing to write. */
export const afterFailure = (
  current: State | undefined,
  admitted: Admission,
  now: number,
  settings: Settings
): State | undefined => {
  const open = (failures: number): State => ({
    state: "open",
    failures,
    openedAt: now,
    until: now + settings.cooldownMs,
    updatedAt: now
  })
  if (admitted === "trial") return current?.state === "half_open" ? open(current.failures + 1) : undefined
  // a call admitted while closed that fails after another host opened the breaker adds nothing
  if (current !== undefined && current.state !== "closed") return undefined
  const failures = (current?.failures ?? 0) + 1
  return failures >= settings.failures ? open(failures) : { ...(current ?? closed(now)), failures, updatedAt: now }
}

/** The state after a success; undefined: nothing to write (the hot path of a healthy provider). */
export const afterSuccess = (current: State | undefined, admitted: Admission, now: number): State | undefined => {
  if (admitted === "trial") return current?.state === "half_open" ? closed(now, current.openedAt) : undefined
  // an open breaker is closed by its trial only, not by a call that was already under way when it opened
  return current !== undefined && current.state === "closed" && current.failures > 0
    ? closed(now, current.openedAt)
    : undefined
}

// ---- service ----

/** What this host knows of an entry; `state` undefined: the entry is unreadable, overwritten by the next write. */
interface Known {
  readonly state: State | undefined
  readonly revision: number
}

export class Breakers extends Context.Service<Breakers, {
  readonly settings: Settings
  /** Whether a call to `provider` may go ahead; may take the half-open trial (one revision-checked write). */
  readonly admit: (provider: string) => Effect.Effect<Admission>
  /** Records a call's success; writes only when it changes the state. */
  readonly succeeded: (provider: string, admitted: Admission) => Effect.Effect<void>
  /** Records a call's retryable failure. */
  readonly failed: (provider: string, admitted: Admission) => Effect.Effect<void>
  /** Whether `provider` is refusing calls now (open, or half-open with a trial under way), from the mirror. */
  readonly isOpen: (provider: string) => Effect.Effect<boolean>
  /** The mirrored state of `provider`. */
  readonly current: (provider: string) => State | undefined
}>()("lantern/actors/model/Breakers") {
  /** Breakers over the shared bucket, mirroring its entries (for `providers` at once, the rest as they change). */
  static readonly layer = (providers: ReadonlyArray<string>) =>
    Layer.effect(
      Breakers,
      Effect.gen(function*() {
        const settings = yield* settingsConfig
        return yield* make(yield* Kv.open(bucket), settings, providers)
      })
    )
}

/** Breakers over `kv`; the watch that feeds the mirror runs in the caller's scope. */
export const make = (kv: Kv.Handle<State>, settings: Settings, providers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const known = new Map<string, Known>()
    /** Keeps the newer of two versions of an entry: the watch and this host's own writes both feed the mirror. */
    const learn = (key: string, change: Known | undefined) => {
      const k = known.get(key)
      if (k !== undefined && change !== undefined && k.revision >= change.revision) return
      if (change === undefined) known.delete(key)
      else known.set(key, change)
    }
    const learnChange = (c: Kv.Change<State>) => {
      const k = known.get(c.key)
      if (k !== undefined && k.revision >= c.revision) return
      if (c._tag === "Removed") known.delete(c.key)
      else known.set(c.key, { state: c._tag === "Put" ? c.value : undefined, revision: c.revision })
    }
    const reload = (key: string) =>
      kv.get(key).pipe(
        Effect.map((e) =>
          learn(key, Option.getOrUndefined(Option.map(e, (x): Known => ({ state: x.value, revision: x.revision }))))
        ),
        // the watch learns the unreadable entry's revision, so the next write replaces it
        Effect.catchTag("CorruptValue", (e) => Effect.logWarning(`breaker ${key}: ${e.message}`))
      )
    // the configured providers' states before the first call; a stale read is fixed by the first write's check
    yield* Effect.forEach(providers, (p) => reload(p).pipe(Effect.ignore), { discard: true })

    const watch = kv.watch().pipe(Stream.runForEach((c) => Effect.sync(() => learnChange(c))))
    yield* Effect.forkScoped(watch.pipe(
      Effect.tapCause((c) => Effect.logWarning("breaker watch stopped; watching again", c)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forever
    ))

    /**
     * Applies `next` to the entry with a revision-checked write, re-reading and re-deciding on a lost race.
     * Returns the state written, or undefined when there was nothing to write or the bus refused.
     */
    const mutate = (
      key: string,
      next: (current: State | undefined, now: number) => State | undefined
    ): Effect.Effect<{ readonly before: State | undefined; readonly after: State } | undefined> =>
      Effect.gen(function*() {
        for (let i = 0; i < 5; i++) {
          const now = yield* Clock.currentTimeMillis
          const k = known.get(key)
          const after = next(k?.state, now)
          if (after === undefined) return undefined
          const written = yield* (k === undefined ? kv.create(key, after) : kv.update(key, after, k.revision))
          if (written._tag === "Created" || written._tag === "Updated") {
            learn(key, { state: after, revision: written.revision })
            return { before: k?.state, after }
          }
          // another host wrote first: decide again on what it wrote
          yield* reload(key).pipe(Effect.ignore)
        }
        return undefined
      }).pipe(
        Effect.catchTag(
          "BusUnavailable",
          (e) => Effect.as(Effect.logWarning(`breaker ${key}: cannot record the call: ${e.message}`), undefined)
        )
      )

    const admit = (provider: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const k = known.get(provider)
        const a = admission(k?.state, now)
        if (a !== "take_trial") return a
        // exactly one caller wins the write from the revision it saw; everyone else treats the breaker as open
        const trial: State = { ...k!.state!, state: "half_open", until: now + settings.cooldownMs, updatedAt: now }
        const taken = yield* kv.update(provider, trial, k!.revision).pipe(
          Effect.catchTag("BusUnavailable", () => Effect.succeed(null))
        )
        if (taken === null) return "open" as Admission
        if (taken._tag === "LostRace") {
          yield* reload(provider).pipe(Effect.ignore)
          return "open" as Admission
        }
        learn(provider, { state: trial, revision: taken.revision })
        yield* Effect.logInfo(`breaker ${provider} half-open: this host makes the trial call`)
        return "trial" as Admission
      })

    const succeeded = (provider: string, admitted: Admission) =>
      Effect.gen(function*() {
        const k = known.get(provider)
        // the hot path: a healthy provider's success writes nothing
        if (admitted !== "trial" && (k === undefined || (k.state?.state === "closed" && k.state.failures === 0))) return
        const done = yield* mutate(provider, (current, now) => afterSuccess(current, admitted, now))
        if (done !== undefined && done.before?.state !== "closed") yield* Effect.logInfo(`breaker ${provider} closed`)
      })

    const failed = (provider: string, admitted: Admission) =>
      Effect.gen(function*() {
        const done = yield* mutate(provider, (current, now) => afterFailure(current, admitted, now, settings))
        if (done === undefined || done.after.state !== "open") return
        yield* Effect.logWarning(
          done.before?.state === "half_open"
            ? `breaker ${provider} re-opened: the trial call failed; next trial in ${settings.cooldownMs} ms`
            : `breaker ${provider} opened after ${done.after.failures} failures; next trial in ${settings.cooldownMs} ms`
        )
      })

    const isOpen = (provider: string) =>
      Effect.map(Clock.currentTimeMillis, (now) => admission(known.get(provider)?.state, now) === "open")

    return Breakers.of({ settings, admit, succeeded, failed, isOpen, current: (p) => known.get(p)?.state })
  })
