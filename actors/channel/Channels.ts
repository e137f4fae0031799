// The channel actor's shell (ADR 0050): connections journaled on lantern.channel.<tenant>.<id>, an index from a
// channel id to its tenant (KV `lantern-channel-index`) for webhooks, which carry no token, and the secrets a
// connection references resolved only when a webhook is checked or a reply is sent.
import { randomBytes } from "node:crypto"
import { Clock, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { Journal } from "../../bus/Journal.ts"
import * as Kv from "../../bus/Kv.ts"
import { Nats, unavailable } from "../../bus/Nats.ts"
import { CHANNELS } from "../../bus/Topology.ts"
import type { SecretName } from "../../schema/Channel.ts"
import type { ActorAddress } from "../../schema/Envelope.ts"
import { encode } from "../../schema/Ids.ts"
import * as Actor from "../kernel/Actor.ts"
import { Secrets } from "../secrets/Secrets.ts"
import * as Decider from "./Decider.ts"

export const actor = Actor.make(Decider.decider)

export const addressOf = (tenant: string, id: string): ActorAddress => ({ type: "channel", tenant, id })

/** channel id → its tenant: written before the connection is journaled, so a journaled channel is always found. */
const index = Kv.bucket({ name: "lantern-channel-index", value: Schema.NonEmptyString, what: "a channel's tenant" })

/** A connection as its journal says. */
export interface Channel extends Decider.Settings {
  readonly id: string
  readonly tenant: string
  readonly createdAt: string
  readonly updatedAt: string
}

export class SecretUnresolved extends Schema.TaggedError<SecretUnresolved>()("SecretUnresolved", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `the channel's ${this.field} could not be resolved: ${this.reason}`
  }
}

const newId = (now: number) => `ch_${encode(now, new Uint8Array(randomBytes(16)))}`

export class Channels extends Context.Service<Channels, {
  readonly create: (
    tenant: string,
    settings: Decider.Settings
  ) => Effect.Effect<Channel, Actor.ExecuteError<Decider.Error>>
  readonly update: (
    tenant: string,
    id: string,
    settings: Omit<Decider.Settings, "kind">
  ) => Effect.Effect<Channel, Actor.ExecuteError<Decider.Error>>
  readonly remove: (tenant: string, id: string, by: string) => Effect.Effect<void, Actor.ExecuteError<Decider.Error>>
  readonly get: (tenant: string, id: string) => Effect.Effect<Channel, Decider.ChannelNotFound | Actor.ReadError>
  readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<Channel>, Actor.ReadError>
  /** The connected channel of that id, whoever's it is (webhooks): none when unknown or deleted. */
  readonly find: (id: string) => Effect.Effect<Option.Option<Channel>, Actor.ReadError>
  /** The value of one of the channel's secrets, for use now; audited as accessed by the channel. */
  readonly secret: (channel: Channel, name: SecretName) => Effect.Effect<Redacted.Redacted<string>, SecretUnresolved>
}>()("lantern/actors/channel/Channels") {
  static readonly layer = Layer.effect(
    Channels,
    Effect.gen(function*() {
      const provide = yield* Actor.provider
      const journal = yield* Journal
      const secrets = yield* Secrets
      const { jsm } = yield* Nats
      const kv = yield* Kv.open(index)

      const read = (tenant: string, id: string) =>
        Effect.gen(function*() {
          const stored = yield* journal.read(addressOf(tenant, id))
          const loaded = actor.fromStored(addressOf(tenant, id), stored)
          const { status, settings } = loaded.state
          if (status !== "connected" || settings === null) return Option.none<Channel>()
          return Option.some<Channel>({
            id,
            tenant,
            ...settings,
            createdAt: stored[0]!.envelope.at,
            updatedAt: stored[stored.length - 1]!.envelope.at
          })
        })

      const get = (tenant: string, id: string) =>
        Effect.flatMap(
          read(tenant, id),
          Option.match({
            onNone: () => Effect.fail(new Decider.ChannelNotFound({ id })),
            onSome: Effect.succeed
          })
        )

      const run = (tenant: string, id: string, command: Decider.Command, key: string) =>
        provide(actor.execute(addressOf(tenant, id), command, { idempotencyKey: key, correlationId: key }))

      return Channels.of({
        create: (tenant, settings) =>
          Effect.gen(function*() {
            const id = newId(yield* Clock.currentTimeMillis)
            yield* kv.put(id, tenant)
            yield* run(tenant, id, { _tag: "Connect", id, settings }, `${id}:connect`)
            return yield* get(tenant, id)
          }),
        update: (tenant, id, settings) =>
          Effect.gen(function*() {
            const seq = yield* journal.lastSeq(addressOf(tenant, id))
            yield* run(tenant, id, { _tag: "Update", id, settings }, `${id}:update:${seq}`)
            return yield* get(tenant, id)
          }),
        remove: (tenant, id, by) => Effect.asVoid(run(tenant, id, { _tag: "Delete", id, by }, `${id}:delete`)),
        get,
        list: (tenant) =>
          Effect.gen(function*() {
            const info = yield* Effect.tryPromise({
              try: () => jsm.streams.info(CHANNELS, { subjects_filter: `lantern.channel.${tenant}.*` }),
              catch: unavailable(`list the channels of ${tenant}`)
            })
            const ids = Object.keys(info.state.subjects ?? {}).map((s) => s.split(".")[3]!).sort()
            const out: Array<Channel> = []
            for (const id of ids) {
              const found = yield* read(tenant, id)
              if (Option.isSome(found)) out.push(found.value)
            }
            return out
          }),
        find: (id) =>
          Effect.gen(function*() {
            if (!/^ch_[0-9a-z]{26}$/.test(id)) return Option.none()
            const tenant = yield* kv.get(id).pipe(Effect.catchTag("CorruptValue", () => Effect.succeed(Option.none())))
            if (Option.isNone(tenant)) return Option.none()
            return yield* read(tenant.value.value, id)
          }),
        secret: (channel, name) => {
          const uri = channel.secrets[name]
          if (uri === undefined)
            return Effect.fail(new SecretUnresolved({ field: `secrets.${name}`, reason: "not set" }))
          return secrets.resolve(channel.tenant, uri, `channel:${channel.id}`).pipe(
            Effect.mapError((e) => new SecretUnresolved({ field: `secrets.${name}`, reason: e._tag }))
          )
        }
      })
    })
  )
}
