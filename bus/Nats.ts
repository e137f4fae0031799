// The NATS connection as an Effect service: an external server when NATS_URL is set, otherwise an embedded
// nats-server child process with its store under LANTERN_HOME (default `.lantern/`).
import { join, resolve } from "node:path"
import { headers, type MsgHdrs } from "@nats-io/nats-core"
import { errors as natsErrors, RequestOne } from "@nats-io/nats-core/internal"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream"
import { Config, Context, Effect, Layer, Option } from "effect"
import { BusUnavailable } from "../schema/Errors.ts"
import * as NatsServer from "./NatsServer.ts"

/**
 * nats.js 3.4 `RequestOne.cancel()` builds a `RequestError("cancelled")` (an Error, with its stack) on every
 * request, also after the answer came, only to reject a promise already resolved: a tenth of the client's CPU on
 * the run path. Cancelling with one shared error instead changes nothing a caller can see (a request cancelled
 * before its answer is still rejected as cancelled). Reproduction for upstream: docs/upstream/nats-request-cancel.md.
 */
const CANCELLED = new natsErrors.RequestError("cancelled")
type Cancellable = {
  timer?: { cancel: () => void }
  mux: { cancel: (r: unknown) => void }
  deferred: { reject: (e: unknown) => void }
}
RequestOne.prototype.cancel = function(this: Cancellable, err?: Error) {
  this.timer?.cancel()
  this.mux.cancel(this)
  this.deferred.reject(err ?? CANCELLED)
}

/**
 * Makes `nc`'s requests (every JetStream API call and publish goes through `nc.request`) survive a reconnect
 * instead of waiting out their timeout (ADR 0079):
 * - nats.js empties its outbound buffer at each dial, so a request written while the connection is down is lost
 *   without a word and times out (10 s for JetStream calls) although the connection is back in a fraction of
 *   that. A request made while the connection is down now waits for it (at most its own timeout), then goes out.
 * - a request in flight when the connection drops can no longer be answered on it (its server is gone or its
 *   reply was routed there): it fails at once as "connection disconnected", and the caller's retry goes out on the
 *   next connection.
 */
export const survivingReconnects = (nc: NatsConnection): void => {
  let up = !nc.isClosed()
  const waiting = new Set<() => void>()
  const inFlight = new Set<(e: Error) => void>()
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        up = false
        const dropped = new natsErrors.RequestError("connection disconnected")
        for (const fail of [...inFlight]) fail(dropped)
      } else if (s.type === "reconnect") {
        up = true
        for (const resume of [...waiting]) resume()
      }
    }
  })().catch(() => undefined)
  /** Resolves once the connection is up; rejects as a request timeout would after `timeoutMs`. */
  const whenUp = (timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const resume = () => {
        clearTimeout(timer)
        waiting.delete(resume)
        resolve()
      }
      const timer = setTimeout(() => {
        waiting.delete(resume)
        reject(new natsErrors.TimeoutError())
      }, timeoutMs)
      waiting.add(resume)
    })
  const request = nc.request.bind(nc)
  const guarded: NatsConnection["request"] = async (subject, payload, opts) => {
    if (!up) await whenUp(opts?.timeout ?? 1_000)
    return new Promise((resolve, reject) => {
      inFlight.add(reject)
      request(subject, payload, opts).then(resolve, reject).finally(() => inFlight.delete(reject))
    })
  }
  ;(nc as { request: NatsConnection["request"] }).request = guarded
}

/** The part of nats.js's protocol handler that `batchedWrites` replaces (nats-core 3's `ProtocolHandler`). */
interface Protocol {
  outbound: { fill: (buf: Uint8Array, ...payloads: Array<Uint8Array>) => void; size: () => number }
  pendingLimit: number
  flushPending: () => void
  sendCommand: (cmd: string | Uint8Array, ...payloads: Array<Uint8Array>) => void
}

const isProtocol = (p: unknown): p is Protocol =>
  typeof p === "object" && p !== null && typeof (p as Protocol).sendCommand === "function" &&
  typeof (p as Protocol).flushPending === "function" && typeof (p as Protocol).outbound?.fill === "function" &&
  typeof (p as Protocol).outbound?.size === "function" && typeof (p as Protocol).pendingLimit === "number"

/**
 * Makes `nc` write what it has to send once per turn of the event loop instead of once per microtask checkpoint.
 * nats.js writes its buffer to the socket in a microtask after the first command put in it; under load, the fibers
 * that publish run one after another in separate callbacks (effect's scheduler, each socket read), so nearly every
 * publish and request was a write of its own, and a read of its own for the server. Now the first command of a turn
 * schedules the write with `setImmediate`, which runs when the turn's callbacks have run; a buffer past nats.js's
 * own limit is still written at once. A client whose handler is not what this expects is left as it is.
 */
export const batchedWrites = (nc: NatsConnection): void => {
  const protocol: unknown = (nc as unknown as { protocol?: unknown }).protocol
  if (!isProtocol(protocol)) return
  const encoder = new TextEncoder()
  let scheduled = false
  const flush = () => {
    scheduled = false
    protocol.flushPending()
  }
  protocol.sendCommand = (cmd, ...payloads) => {
    protocol.outbound.fill(typeof cmd === "string" ? encoder.encode(cmd) : cmd, ...payloads)
    if (protocol.outbound.size() >= protocol.pendingLimit) protocol.flushPending()
    else if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
}

export interface Connection {
  readonly url: string
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  /** The child nats-server when the bus is embedded. */
  readonly embedded: NatsServer.Handle | null
}

/**
 * The servers of a NATS_URL: one URL, or a comma-separated list (the nodes of a cluster, so the first
 * connection does not depend on any single one being up).
 */
export const serversOf = (url: string): Array<string> => url.split(",").map((s) => s.trim()).filter((s) => s !== "")

const open = (url: string, name: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const nc = await connect({
          servers: serversOf(url),
          name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          timeout: 5000,
          // no stack capture per request (nats.js builds an Error for each to report where a timeout came from):
          // most of the client's CPU at load, for a stack that would only ever point into this module
          noAsyncTraces: true
        })
        survivingReconnects(nc)
        batchedWrites(nc)
        return { nc, js: jetstream(nc, { timeout: 10_000 }), jsm: await jetstreamManager(nc, { timeout: 10_000 }) }
      },
      catch: (e) =>
        new BusUnavailable({ operation: "connect", reason: `cannot connect to NATS at ${url}: ${String(e)}` })
    }),
    ({ nc }) => Effect.promise(() => nc.drain().catch(() => nc.close()))
  )

export class Nats extends Context.Service<Nats, Connection>()("lantern/bus/Nats") {
  /** Connects to the server at `url` (or any of a comma-separated list of servers). */
  static readonly layerUrl = (url: string, name = "lantern") =>
    Layer.effect(
      Nats,
      Effect.map(open(url, name), (c) => Nats.of({ url, ...c, embedded: null }))
    )

  /** Starts an embedded nats-server with its store in `storeDir`, then connects to it. */
  static readonly layerEmbedded = (storeDir: string, name = "lantern", sync: "always" | "interval" = "always") =>
    Layer.effect(
      Nats,
      Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () => NatsServer.start({ storeDir, sync }),
            catch: (e) =>
              new BusUnavailable({
                operation: "start embedded nats-server",
                reason: e instanceof Error ? e.message : String(e)
              })
          }),
          (h) => Effect.promise(() => h.stop())
        )
        const c = yield* open(server.url, name)
        return Nats.of({ url: server.url, ...c, embedded: server })
      })
    )

  /** NATS_URL when set, otherwise an embedded server under LANTERN_HOME/nats. */
  static readonly layerConfig = (name = "lantern") =>
    Layer.unwrap(
      Effect.gen(function*() {
        const url = yield* Config.option(Config.NonEmptyString("NATS_URL"))
        const home = yield* Config.String("LANTERN_HOME").pipe(Config.withDefault(".lantern"))
        // the embedded server syncs every write (durable by default); `interval` trades that for speed, and says so
        const sync = yield* Config.Literals(["always", "interval"], "LANTERN_NATS_SYNC").pipe(
          Config.withDefault("always" as const)
        )
        if (Option.isNone(url) && sync === "interval") {
          yield* Effect.logWarning(
            "LANTERN_NATS_SYNC=interval: the embedded nats-server acknowledges writes before they reach the disk; "
              + "a machine crash can lose the last seconds of journals"
          )
        }
        return Option.isSome(url)
          ? Nats.layerUrl(url.value, name)
          : Nats.layerEmbedded(join(resolve(home), "nats"), name, sync)
      })
    )
}

/**
 * Maps a foreign NATS error to the bus's retryable error. `operation` may name a subject, which the error keeps
 * for logs; its message, which may reach a client, says what the subject is instead (`withoutSubjects`).
 */
export const unavailable = (operation: string) => (e: unknown) =>
  new BusUnavailable({ operation, reason: e instanceof Error ? e.message : String(e) })

/** Message headers to publish with, from names and values; a null value leaves its header out. */
export const headersOf = (entries: Readonly<Record<string, string | null>>): MsgHdrs => {
  const h = headers()
  for (const [name, value] of Object.entries(entries)) if (value !== null) h.set(name, value)
  return h
}
