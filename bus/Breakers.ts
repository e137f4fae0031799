// Circuit breakers for model providers, shared by every host through a KV bucket: after enough consecutive
// retryable failures a provider is skipped for a cooldown, then one caller anywhere gets a trial call.
// Writes are revision-checked; reads come from a local mirror fed by a watch, so a call costs no KV round trip.
import { Kvm, type KV } from "@nats-io/kv"
import { Clock, Config, Context, Effect, Layer, Schedule, Schema, Stream } from "effect"
import { Nats, unavailable } from "./Nats.ts"
import { BREAKERS_BUCKET } from "./Topology.ts"

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

const decodeState = Schema.decodeUnknownOption(Schema.fromJsonString(State))

export const decode = (text: string): State | undefined => {
  const o = decodeState(text)
  return o._tag === "Some" ? o.value : undefined
}

const WRONG_LAST_SEQUENCE = 10071
const isRevisionMismatch = (e: unknown) =>
  typeof e === "object" && e !== null &&
  (((e as { api_error?: { err_code?: number } }).api_error?.err_code === WRONG_LAST_SEQUENCE) ||
    /wrong last sequence|key exists/i.test(String((e as Error).message)))

// ---- decisions (pure) ----

/** What `current` lets a caller do at `now`. Taking a trial still needs the revision-checked write. */
export const admission = (current: State | undefined, now: number): Admission | "take_trial" => {
  if (current === undefined || current.state === "closed") return "closed"
  // open past its cooldown, or a half-open trial abandoned past its deadline: a trial may be taken
  return current.until <= now ? "take_trial" : "open"
}

export const closed = (now: number, openedAt = 0): State => ({ state: "closed", failures: 0, openedAt, until: 0, updatedAt: now })

/** The state after a retryable failure of a call admitted as `admitted`; undefined: nothing to write. */
export const afterFailure = (current: State | undefined, admitted: Admission, now: number, settings: Settings): State | undefined => {
  const open = (failures: number): State => ({ state: "open", failures, openedAt: now, until: now + settings.cooldownMs, updatedAt: now })
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
  return current !== undefined && current.state === "closed" && current.failures > 0 ? closed(now, current.openedAt) : undefined
}

// ---- service ----

interface Known {
  readonly state: State
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
}>()("lantern/bus/Breakers") {
  /** Breakers over the shared bucket, mirroring its entries (for `providers` at once, the rest as they change). */
  static readonly layer = (providers: ReadonlyArray<string>) =>
    Layer.effect(
      Breakers,
      Effect.gen(function*() {
        const { js } = yield* Nats
        const settings = yield* settingsConfig
        const bucket = yield* Effect.tryPromise({ try: () => new Kvm(js).open(BREAKERS_BUCKET), catch: unavailable("open breaker bucket") })
        return yield* make(bucket, settings, providers)
      })
    )
}

/** Breakers over `bucket`; the watch that feeds the mirror runs in the caller's scope. */
export const make = (bucket: KV, settings: Settings, providers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const known = new Map<string, Known>()
    /** Keeps the newer of two versions of an entry: the watch and this host's own writes both feed the mirror. */
    const learn = (key: string, state: State | undefined, revision: number) => {
      const k = known.get(key)
      if (k !== undefined && k.revision >= revision) return
      if (state === undefined) known.delete(key)
      else known.set(key, { state, revision })
    }
    const reload = (key: string) =>
      Effect.tryPromise({ try: () => bucket.get(key), catch: unavailable(`read breaker ${key}`) }).pipe(
        Effect.map((e) => {
          if (e === null) return
          learn(key, e.operation === "PUT" ? decode(e.string()) : undefined, e.revision)
        })
      )
    // the configured providers' states before the first call; a stale read is fixed by the first write's check
    yield* Effect.forEach(providers, (p) => reload(p).pipe(Effect.ignore), { discard: true })

    const watch = Effect.gen(function*() {
      const watcher = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => bucket.watch(), catch: unavailable("watch breakers") }),
        (w) => Effect.sync(() => w.stop())
      )
      yield* Stream.fromAsyncIterable(watcher, unavailable("watch breakers")).pipe(
        Stream.runForEach((e) => Effect.sync(() => learn(e.key, e.operation === "PUT" ? decode(e.string()) : undefined, e.revision)))
      )
    }).pipe(Effect.scoped)
    yield* Effect.forkScoped(watch.pipe(
      Effect.tapCause((c) => Effect.logWarning("breaker watch stopped; watching again", c)),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.forever
    ))

    /**
     * Applies `next` to the entry with a revision-checked write, re-reading and re-deciding on a conflict.
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
          const written = yield* Effect.tryPromise({
            try: () => k === undefined ? bucket.create(key, JSON.stringify(after)) : bucket.update(key, JSON.stringify(after), k.revision),
            catch: (e) => e
          }).pipe(Effect.result)
          if (written._tag === "Success") {
            learn(key, after, written.success)
            return { before: k?.state, after }
          }
          if (!isRevisionMismatch(written.failure)) {
            yield* Effect.logWarning(`breaker ${key}: cannot record the call: ${unavailable(`write breaker ${key}`)(written.failure).message}`)
            return undefined
          }
          // another host wrote first: decide again on what it wrote
          yield* reload(key).pipe(Effect.ignore)
        }
        return undefined
      })

    const admit = (provider: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const k = known.get(provider)
        const a = admission(k?.state, now)
        if (a !== "take_trial") return a
        // exactly one caller wins the write from the revision it saw; everyone else treats the breaker as open
        const trial: State = { ...k!.state, state: "half_open", until: now + settings.cooldownMs, updatedAt: now }
        const taken = yield* Effect.tryPromise({ try: () => bucket.update(provider, JSON.stringify(trial), k!.revision), catch: (e) => e }).pipe(
          Effect.result
        )
        if (taken._tag === "Failure") {
          if (isRevisionMismatch(taken.failure)) yield* reload(provider).pipe(Effect.ignore)
          return "open" as Admission
        }
        learn(provider, trial, taken.success)
        yield* Effect.logInfo(`breaker ${provider} half-open: this host makes the trial call`)
        return "trial" as Admission
      })

    const succeeded = (provider: string, admitted: Admission) =>
      Effect.gen(function*() {
        const k = known.get(provider)
        // the hot path: a healthy provider's success writes nothing
        if (admitted !== "trial" && (k === undefined || (k.state.state === "closed" && k.state.failures === 0))) return
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
