// Host liveness (ADR 0036): every Lantern process is a host with a stable name and an incarnation. It claims a slot
// in the hosts bucket (key = its name, `<LANTERN_HOST_ID or hostname>`, then `-2`, `-3`… when a live process
// already holds one), keeps that key alive with a per-message TTL the server enforces, and answers probes on a
// subject of its own. Another host asks "is this holder alive?" with one request: "no responders" means the
// holder's connection is gone (a killed process loses it at once), a reply means alive. Only a holder that neither
// answers nor keeps its key is dead by silence. No host compares its clock with another's.
import { hostname } from "node:os"
import { randomBytes } from "node:crypto"
import { Kvm, type KV } from "@nats-io/kv"
import { Config, Context, Duration, Effect, Layer, Schedule } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { isWrongLastSequence } from "./Kv.ts"
import { Nats, unavailable } from "./Nats.ts"
import { HOSTS_BUCKET } from "./Topology.ts"

export interface Settings {
  /** The stable part of this host's name; the machine's hostname when unset. */
  readonly name: string
  /** How long the server keeps this host's liveness key without a refresh (at least 1 s; refreshed every third). */
  readonly ttl: Duration.Duration
  /** How long a probe waits for an answer before the holder's key decides. */
  readonly probeTimeout: Duration.Duration
}

export const settingsConfig = Config.all({
  name: Config.String("LANTERN_HOST_ID").pipe(Config.withDefault(hostname())),
  ttl: Config.Duration("LANTERN_HOST_TTL").pipe(Config.withDefault(Duration.seconds(3))),
  probeTimeout: Config.Duration("LANTERN_HOST_PROBE_TIMEOUT").pipe(Config.withDefault(Duration.millis(100)))
})

/** What a slot's key holds. */
interface Slot {
  readonly incarnation: string
  readonly pid: number
  readonly startedAt: string
}

/** A holder is `<slot>/<incarnation>`: the slot names the host across restarts, the incarnation this process. */
export const holderOf = (slot: string, incarnation: string) => `${slot}/${incarnation}`

/** The slot of a holder, or null for a holder written before slots existed. */
export const slotOf = (holder: string): string | null => {
  const slash = holder.indexOf("/")
  return slash < 0 ? null : holder.slice(0, slash)
}

/** The process id in a holder (`<slot>/<pid>-<random>`), for tests and benches that map holders to processes. */
export const pidOfHolder = (holder: string): number | null => {
  const m = /\/(\d+)-[0-9a-f]+$/.exec(holder)
  return m === null ? null : Number(m[1])
}

/** A KV key and a subject token from any name: everything but letters, digits, `-` and `_` becomes `_`. */
export const tokenOf = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, "_")

export const probeSubject = (holder: string) => `lantern.hosts.probe.${tokenOf(holder)}`

const decodeSlot = (text: string): Slot | null => {
  try {
    const v = JSON.parse(text) as Slot
    return typeof v.incarnation === "string" ? v : null
  } catch {
    return null
  }
}

export type Verdict = "alive" | "dead"

export class Hosts extends Context.Service<Hosts, {
  /** This process as a lease holder: `<slot>/<incarnation>`. */
  readonly id: string
  readonly slot: string
  readonly ttlMs: number
  /**
   * Whether `holder` lives: "dead" when nothing answers its probe subject (its connection is gone), or when its
   * probe times out twice and its slot no longer holds it; otherwise "alive". A previous life of this host is asked
   * too (its connection is gone, so it is dead at once), except the one whose slot this process took.
   */
  readonly probe: (holder: string) => Effect.Effect<Verdict, BusUnavailable>
}>()("lantern/bus/Hosts") {
  static readonly layer = Layer.effect(
    Hosts,
    Effect.gen(function*() {
      const { nc, js } = yield* Nats
      const settings = yield* settingsConfig
      const ttlMs = Math.max(1_000, Duration.toMillis(settings.ttl))
      const ttl = `${Math.ceil(ttlMs / 1_000)}s`
      const probeTimeoutMs = Duration.toMillis(settings.probeTimeout)
      const bucket: KV = yield* Effect.tryPromise({
        try: () => new Kvm(js).open(HOSTS_BUCKET),
        catch: unavailable("open hosts bucket")
      })
      const incarnation = `${process.pid}-${randomBytes(4).toString("hex")}`
      const value = JSON.stringify({ incarnation, pid: process.pid, startedAt: new Date().toISOString() })

      /** Asks the holder's probe subject; "silent" when it does not answer in time. */
      const ask = (holder: string) =>
        Effect.tryPromise({
          try: () =>
            nc.request(probeSubject(holder), "", { timeout: probeTimeoutMs }).then(
              () => "alive" as const,
              (e: unknown) => {
                if (
                  e instanceof Error && "isNoResponders" in e && (e as { isNoResponders(): boolean }).isNoResponders()
                )
                  return "dead" as const
                if (e instanceof Error && e.name === "TimeoutError") return "silent" as const
                if (e instanceof Error && /timeout/i.test(e.message)) return "silent" as const
                throw e
              }
            ),
          catch: unavailable(`probe ${holder}`)
        })

      /** Writes this host's slot key with the TTL, expecting the key's last revision `previous` (0: none). */
      const write = (slot: string, previous: number) =>
        Effect.tryPromise({
          try: () =>
            js.publish(`$KV.${HOSTS_BUCKET}.${tokenOf(slot)}`, value, {
              ttl,
              expect: { lastSubjectSequence: previous }
            }).then((ack) => ack.seq, (e: unknown) => (isWrongLastSequence(e) ? null : Promise.reject(e))),
          catch: unavailable(`write host slot ${slot}`)
        })

      const current = (slot: string) =>
        Effect.tryPromise({
          try: () => bucket.get(tokenOf(slot)),
          catch: unavailable(`read host slot ${slot}`)
        })

      /** Answers probes for `holder` from now on: the server has the subscription when this succeeds. */
      const answer = (holder: string) =>
        Effect.tryPromise({
          try: async () => {
            const sub = nc.subscribe(probeSubject(holder), {
              callback: (_e, m) => {
                m.respond("")
              }
            })
            await nc.flush()
            return sub
          },
          catch: unavailable(`answer probes for ${holder}`)
        })

      /**
       * Takes the first slot that is free: absent, expired, or held by an incarnation whose connection is gone. The
       * slot's holder answers probes before its key names it: another process starting at the same moment that
       * reads the key and probes finds it alive, and looks further (it would otherwise take the same slot).
       */
      const claim = Effect.gen(function*() {
        for (let n = 1; n <= 256; n++) {
          const slot = n === 1 ? settings.name : `${settings.name}-${n}`
          const entry = yield* current(slot)
          const held = entry !== null && entry.operation === "PUT" ? decodeSlot(entry.string()) : null
          const previous = held === null ? null : holderOf(slot, held.incarnation)
          if (previous !== null && (yield* ask(previous)) !== "dead") continue
          const sub = yield* answer(holderOf(slot, incarnation))
          const revision = yield* write(slot, entry?.revision ?? 0).pipe(
            Effect.onError(() => Effect.sync(() => sub.unsubscribe()))
          )
          if (revision !== null) return { slot, revision, sub, previous }
          sub.unsubscribe()
          n-- // someone wrote the slot between the read and the write: look at it again
        }
        return yield* Effect.die(new Error(`no free host slot for ${settings.name} among 256`))
      })

      // a bus slow to answer at start (a loaded machine, a cluster electing) is waited for, as Topology.apply is
      const claimed = yield* claim.pipe(
        Effect.tapError((e) => Effect.logWarning(`${e.message}; trying again`)),
        Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 40 })
      )
      const slot = claimed.slot
      const id = holderOf(slot, incarnation)
      let revision = claimed.revision
      const sub = claimed.sub

      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          sub.unsubscribe()
          // a clean stop frees the slot at once (a killed process's slot frees itself when its key expires)
          await bucket.delete(tokenOf(slot), { previousSeq: revision }).catch(() => undefined)
        })
      )

      /** Keeps the key alive; a key that expired meanwhile (a long bus outage) is written again. */
      const refresh = Effect.gen(function*() {
        const next = yield* write(slot, revision)
        if (next !== null) {
          revision = next
          return
        }
        const entry = yield* current(slot)
        const held = entry !== null && entry.operation === "PUT" ? decodeSlot(entry.string()) : null
        if (held?.incarnation === incarnation) {
          revision = entry!.revision
          return
        }
        if (held !== null) {
          // another process claimed this slot while this one could not be reached: its probes still answer
          // for this id, which stays unique, so nothing is driven twice; the slot is simply its now
          yield* Effect.logWarning(`host slot ${slot} was claimed by pid ${held.pid}; keeping id ${id}`)
          revision = -1
          return
        }
        const again = yield* write(slot, entry?.revision ?? 0)
        if (again !== null) revision = again
      })
      yield* Effect.forkScoped(
        Effect.suspend(() => (revision < 0 ? Effect.void : refresh)).pipe(
          Effect.catchCause((c) => Effect.logWarning("cannot refresh host liveness key", c)),
          Effect.repeat(Schedule.spaced(Duration.millis(Math.floor(ttlMs / 3))))
        )
      )

      // an incarnation that died stays dead: remembered, never asked again; the one whose slot this process took
      // was found dead doing so
      const dead = new Set<string>()
      if (claimed.previous !== null) dead.add(claimed.previous)

      const verdict = (holder: string) =>
        Effect.gen(function*() {
          if (holder === id) return "alive" as const
          // another incarnation of this slot is asked like any host: it may be a previous life of this host, or a
          // live process that took the slot while this one could not reach the bus
          if (dead.has(holder)) return "dead" as const
          const answer = yield* ask(holder)
          if (answer !== "silent") return answer
          // a process being killed keeps its connection (and its subscription) until the kernel has torn its memory
          // down, so a probe sent meanwhile reaches it and goes unanswered; asked again, a dead one's subscription is
          // gone and "no responders" says so at once, where waiting for the next probe cost another interval
          const again = yield* ask(holder)
          if (again !== "silent") return again
          const holderSlot = slotOf(holder)
          if (holderSlot === null) return "dead" as const
          const entry = yield* current(holderSlot)
          const held = entry !== null && entry.operation === "PUT" ? decodeSlot(entry.string()) : null
          return held !== null && holderOf(holderSlot, held.incarnation) === holder ? "alive" as const : "dead" as const
        })

      const probe = (holder: string) =>
        Effect.tap(verdict(holder), (v) =>
          Effect.sync(() => {
            if (v === "dead") dead.add(holder)
          }))

      yield* Effect.logInfo(`host ${id} (liveness key ttl ${ttl})`)
      return Hosts.of({ id, slot, ttlMs, probe })
    })
  )
}
