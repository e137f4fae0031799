// Live model tokens on core NATS (ADR 0061): published fire-and-forget on `lantern.tokens.<tenant>.<runId>`, no
// stream captures them, so nobody listening costs a publish and nothing is stored. The journal keeps the answer.
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import type { BusUnavailable } from "../schema/Errors.ts"
import { Frame } from "../schema/Tokens.ts"
import { Nats, unavailable } from "./Nats.ts"

/** How long a subscription made by `follow` waits for its stream to be run before it is dropped. */
export const UNCLAIMED_MS = 30_000

export const subjectOf = (tenant: string, runId: string) => `lantern.tokens.${tenant}.${runId}`

// a frame is plain JSON of our own making: no schema on the way out, where it would cost most of a publish
const encode = (frame: Frame): string => JSON.stringify(frame)
const decode = Schema.decodeUnknownOption(Schema.fromJsonString(Frame))
const utf8 = new TextDecoder()

export class Tokens extends Context.Service<Tokens, {
  /** Publishes a frame; never fails nor waits (a bus away drops it: tokens are only a preview). */
  readonly publish: (tenant: string, runId: string, frame: Frame) => void
  /**
   * Subscribes to the run's frames: every frame published after this succeeds is in the stream (earlier ones are
   * gone); malformed messages are skipped. The subscription ends with the stream.
   */
  readonly follow: (
    tenant: string,
    runId: string
  ) => Effect.Effect<Stream.Stream<Frame, BusUnavailable>, BusUnavailable>
}>()("lantern/bus/Tokens") {
  static readonly layer = Layer.suspend(() => Tokens.layerWith({ unclaimedMs: UNCLAIMED_MS }))
  static readonly layerWith = (options: { readonly unclaimedMs: number }) =>
    Layer.effect(
      Tokens,
      Effect.map(Nats, ({ nc }) =>
        Tokens.of({
          publish: (tenant, runId, frame) => {
            try {
              nc.publish(subjectOf(tenant, runId), encode(frame))
            } catch {
              // a closed or draining connection: the preview is lost, the run is not
            }
          },
          follow: (tenant, runId) =>
            Effect.gen(function*() {
              const sub = yield* Effect.try({
                try: () => nc.subscribe(subjectOf(tenant, runId)),
                catch: unavailable("follow live tokens")
              })
              // once the server has the subscription, every frame published after this returns is delivered
              yield* Effect.tryPromise({ try: () => nc.flush(), catch: unavailable("follow live tokens") }).pipe(
                Effect.tapError(() => Effect.sync(() => sub.unsubscribe()))
              )
              // the stream ends the subscription; one that is never run (its client went away before the response
              // began) would keep it for ever, so an unclaimed subscription is dropped after a while
              let claimed = false
              const unclaimed = setTimeout(() => {
                if (!claimed) sub.unsubscribe()
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
                Stream.ensuring(Effect.sync(() => sub.unsubscribe()))
              )
            })
        }))
    )
}
