// The marketplace (ADR 0059): listings of published agents, forks of a listing's spec into the buyer's tenant, and
// invocations that run the listing's agent in the seller's tenant, under the seller's budget, and answer with the
// output and a settlement receipt signed by the deployment's receipt keys.
import { Clock, Config, Context, Effect, Layer, Option, Schedule, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import type { AgentView } from "../../schema/Agent.ts"
import type { AgentSpec } from "../../schema/AgentSpec.ts"
import type { AgentNotFound, AgentVersionNotFound, BusUnavailable } from "../../schema/Errors.ts"
import {
  type ForkRequest,
  Invocation,
  type InvokeRequest,
  Listing,
  type PublishRequest,
  type SettlementReceipt,
  settlementBytes,
  SETTLEMENT_VERSION,
  slugOf,
  type UnsignedSettlement
} from "../../schema/Marketplace.ts"
import type { RunView } from "../../schema/Run.ts"
import { Agents } from "../agent/Agents.ts"
import type * as AgentDecider from "../agent/Decider.ts"
import { Audit } from "../audit/Audit.ts"
import type * as Actor from "../kernel/Actor.ts"
import { Ids } from "../kernel/Ids.ts"
import { type SigningKey, SigningKeys, type SigningKeyUnavailable, signDetached } from "../receipts/Keys.ts"
import { Runs, type StartError } from "../run/Runs.ts"
import * as JsonSchema from "../tools/JsonSchema.ts"

/** No published listing of that slug (an unpublished one included). */
export class ListingNotFound extends Schema.TaggedError<ListingNotFound>()("ListingNotFound", { slug: Schema.String }) {
  override get message() {
    return `no published listing '${this.slug}'`
  }
}

/** The invocation's input does not match the listing's input schema. */
export class InvocationInputInvalid extends Schema.TaggedError<InvocationInputInvalid>()("InvocationInputInvalid", {
  issues: Schema.Array(Schema.String)
}) {
  override get message() {
    return `the input does not match the listing's input schema: ${this.issues.join("; ")}`
  }
}

/** The seller's run did not finish within the invocation's wait: no settlement yet, the run goes on. */
export class InvocationUnfinished
  extends Schema.TaggedError<InvocationUnfinished>()("InvocationUnfinished", { runId: Schema.String }) {
  override get message() {
    return `the seller's run ${this.runId} did not finish in time; no settlement was issued`
  }
}

/** `listing.<sellerTenant>.<agent>` → the listing (its slug is `<sellerTenant>.<agent>`). */
const listings = Kv.bucket({ name: "lantern-marketplace", value: Schema.fromJsonString(Listing), what: "a listing" })
/** `seller.<tenant>.<invocationId>` and `buyer.<tenant>.<invocationId>` → the invocation, for each side's list. */
const invocationsBucket = Kv.bucket({
  name: "lantern-marketplace-invocations",
  value: Schema.fromJsonString(Invocation),
  what: "a marketplace invocation"
})

const listingKey = (slug: string) => `listing.${slug}`

const matches = (l: Listing, query: { readonly category?: string; readonly q?: string }) => {
  if (query.category !== undefined && l.category !== query.category) return false
  if (query.q === undefined || query.q.trim() === "") return true
  const text = [l.slug, l.agentName, l.description, l.category, ...l.tags, l.readme].join(" ").toLowerCase()
  return query.q.toLowerCase().split(/\s+/u).filter((w) => w !== "").every((w) => text.includes(w))
}

type Failed = BusUnavailable | Actor.ReadError

export class Marketplace extends Context.Service<Marketplace, {
  readonly publish: (
    tenant: string,
    request: PublishRequest,
    by: string
  ) => Effect.Effect<{ readonly listing: Listing; readonly created: boolean }, AgentNotFound | Failed>
  readonly list: (query: { readonly category?: string; readonly q?: string }) => Effect.Effect<
    ReadonlyArray<Listing>,
    BusUnavailable
  >
  readonly get: (slug: string) => Effect.Effect<Listing, ListingNotFound | BusUnavailable>
  readonly unpublish: (
    tenant: string,
    slug: string,
    by: string
  ) => Effect.Effect<void, ListingNotFound | BusUnavailable>
  readonly fork: (
    tenant: string,
    slug: string,
    request: ForkRequest,
    by: string
  ) => Effect.Effect<
    AgentView,
    ListingNotFound | AgentVersionNotFound | Actor.ExecuteError<AgentDecider.Error> | Failed
  >
  readonly invoke: (
    tenant: string,
    slug: string,
    request: InvokeRequest,
    by: string
  ) => Effect.Effect<
    Invocation,
    | ListingNotFound
    | InvocationInputInvalid
    | InvocationUnfinished
    | StartError
    | SigningKeyUnavailable
    | Failed
  >
  readonly invocations: (tenant: string, as: "buyer" | "seller") => Effect.Effect<
    ReadonlyArray<Invocation>,
    BusUnavailable
  >
}>()("lantern/actors/Marketplace") {
  static readonly layer = Layer.effect(
    Marketplace,
    Effect.gen(function*() {
      const kv = yield* Kv.open(listings)
      const recorded = yield* Kv.open(invocationsBucket)
      const agents = yield* Agents
      const runs = yield* Runs
      const keys = yield* SigningKeys
      const audit = yield* Audit
      const ids = yield* Ids
      const waitSeconds = yield* Config.Int("LANTERN_MARKETPLACE_WAIT_SECONDS").pipe(
        Config.withDefault(120),
        Effect.orDie
      )
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms).toISOString())

      const get = (slug: string): Effect.Effect<Listing, ListingNotFound | BusUnavailable> =>
        kv.get(listingKey(slug)).pipe(
          Effect.catchTag("CorruptValue", () => Effect.succeed(Option.none<Kv.Entry<Listing>>())),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(new ListingNotFound({ slug })),
            onSome: (e) => Effect.succeed(e.value)
          }))
        )

      const publish = (tenant: string, request: PublishRequest, by: string) =>
        Effect.gen(function*() {
          const agent = yield* agents.get(tenant, request.agentName)
          const slug = slugOf(tenant, request.agentName)
          const before = yield* get(slug).pipe(Effect.option)
          const at = yield* now
          const listing: Listing = {
            slug,
            sellerTenant: tenant,
            agentName: agent.name,
            agentVersion: agent.latestVersion,
            agentVersionDigest: agent.digest,
            description: request.description,
            category: request.category,
            tags: request.tags ?? [],
            readme: request.readme ?? "",
            inputSchema: request.inputSchema ?? {},
            publishedAt: Option.isSome(before) ? before.value.publishedAt : at,
            updatedAt: at
          }
          yield* kv.put(listingKey(slug), listing)
          yield* audit.record({
            tenant,
            action: "marketplace.published",
            actor: by,
            target: slug,
            outcome: "allowed",
            detail: { agentVersion: String(listing.agentVersion) }
          })
          return { listing, created: Option.isNone(before) }
        })

      const list = (query: { readonly category?: string; readonly q?: string }) =>
        Effect.gen(function*() {
          const names = yield* kv.keys("listing.>")
          const found = yield* Effect.forEach(
            names,
            (name) =>
              kv.get(name).pipe(
                Effect.catchTag("CorruptValue", () => Effect.succeed(Option.none<Kv.Entry<Listing>>()))
              ),
            { concurrency: 8 }
          )
          return found.flatMap((o) => Option.isSome(o) && matches(o.value.value, query) ? [o.value.value] : [])
            .sort((a, b) => a.slug.localeCompare(b.slug))
        })

      const unpublish = (tenant: string, slug: string, by: string) =>
        Effect.gen(function*() {
          const listing = yield* get(slug)
          // another tenant's listing is not the caller's to see as its own: the same 404 as an absent one
          if (listing.sellerTenant !== tenant) return yield* Effect.fail(new ListingNotFound({ slug }))
          yield* kv.delete(listingKey(slug))
          yield* audit.record({
            tenant,
            action: "marketplace.unpublished",
            actor: by,
            target: slug,
            outcome: "allowed",
            detail: {}
          })
        })

      const fork = (tenant: string, slug: string, request: ForkRequest, by: string) =>
        Effect.gen(function*() {
          const listing = yield* get(slug)
          const version = yield* agents.version(listing.sellerTenant, listing.agentName, listing.agentVersion)
          const name = request.newName ?? listing.agentName
          // the resolved spec is a spec with its defaults written out: the fork behaves as the listing does
          const forked = yield* agents.create(tenant, {
            name,
            description: `forked from ${slug}: ${listing.description}`.slice(0, 2_000),
            spec: version.spec as unknown as AgentSpec
          })
          yield* audit.record({
            tenant,
            action: "marketplace.forked",
            actor: by,
            target: slug,
            outcome: "allowed",
            detail: { agent: name, agentVersion: String(listing.agentVersion) }
          })
          return forked
        })

      const sign = (key: SigningKey, unsigned: UnsignedSettlement): SettlementReceipt => ({
        ...unsigned,
        signature: Buffer.from(signDetached(settlementBytes(unsigned), key.secretKey)).toString("base64url")
      })

      const invoke = (tenant: string, slug: string, request: InvokeRequest, by: string) =>
        Effect.gen(function*() {
          const listing = yield* get(slug)
          const issues = JsonSchema.validate(listing.inputSchema, request.input, "input")
          if (issues.length > 0) return yield* Effect.fail(new InvocationInputInvalid({ issues }))
          const invocationId = yield* ids.next("inv")
          // the run is the seller's: its tenant, its budget (402 when over), its receipt
          const { run } = yield* runs.start(
            listing.sellerTenant,
            { agentName: listing.agentName, agentVersion: listing.agentVersion, input: request.input },
            `marketplace:${invocationId}`
          )
          const settled: RunView = yield* runs.get(listing.sellerTenant, run.id).pipe(
            Effect.repeat({ schedule: Schedule.spaced("250 millis"), until: (r) => r.status !== "running" }),
            Effect.timeoutOption(`${waitSeconds} seconds`),
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(new InvocationUnfinished({ runId: run.id })),
              onSome: Effect.succeed
            }))
          )
          const status = settled.status === "running" ? "failed" : settled.status
          const at = yield* now
          const key = yield* keys.current
          const receipt = sign(key, {
            kind: "settlement",
            version: SETTLEMENT_VERSION,
            invocationId,
            buyerTenant: tenant,
            sellerTenant: listing.sellerTenant,
            agent: listing.agentName,
            agentVersion: listing.agentVersion,
            runId: run.id,
            status,
            costUsd: settled.costUsd,
            issuedAt: at,
            keyId: key.keyId
          })
          const invocation: Invocation = {
            invocationId,
            slug,
            buyerTenant: tenant,
            sellerTenant: listing.sellerTenant,
            runId: run.id,
            status,
            output: settled.output,
            costUsd: settled.costUsd,
            receipt,
            createdAt: at
          }
          yield* recorded.put(`seller.${listing.sellerTenant}.${invocationId}`, invocation)
          yield* recorded.put(`buyer.${tenant}.${invocationId}`, invocation)
          const detail = { invocationId, runId: run.id, costUsd: String(settled.costUsd) }
          yield* audit.record({
            tenant,
            action: "marketplace.invoked",
            actor: by,
            target: slug,
            outcome: "allowed",
            detail
          })
          yield* audit.record({
            tenant: listing.sellerTenant,
            action: "marketplace.served",
            actor: `tenant:${tenant}`,
            target: slug,
            outcome: "allowed",
            detail
          })
          return invocation
        })

      const invocations = (tenant: string, as: "buyer" | "seller") =>
        Effect.gen(function*() {
          const names = yield* recorded.keys(`${as}.${tenant}.*`)
          const found = yield* Effect.forEach(
            names,
            (name) =>
              recorded.get(name).pipe(
                Effect.catchTag("CorruptValue", () => Effect.succeed(Option.none<Kv.Entry<Invocation>>()))
              ),
            { concurrency: 8 }
          )
          // invocation ids are time-ordered: newest first
          return found.flatMap((o) => Option.isSome(o) ? [o.value.value] : []).sort((a, b) =>
            b.invocationId.localeCompare(a.invocationId)
          )
        })

      return Marketplace.of({ publish, list, get, unpublish, fork, invoke, invocations })
    })
  )
}
