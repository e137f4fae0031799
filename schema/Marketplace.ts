// The marketplace's language (ADR 0059): a tenant publishes one of its agents as a listing; any tenant may fork the
// listing's spec into its own tenant, or invoke it: the run happens in the seller's tenant under the seller's budget,
// and the buyer gets the output with a settlement receipt signed by the deployment's receipt keys. No I/O.
import { Schema } from "effect"
import { AgentName } from "./Ids.ts"

/** A listing's slug: `<seller tenant>.<agent>`, unique in the deployment. */
export const Slug = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9][a-z0-9_-]{0,62}$/u, {
    message: "Expected a listing slug like acme.summarize"
  })
)
export type Slug = typeof Slug.Type
export const slugOf = (tenant: string, agentName: string) => `${tenant}.${agentName}`

const Category = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,39}$/u, { message: "Expected a category: lowercase letters, digits, '-'" })
)
const Tag = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9-]{0,39}$/u, { message: "Expected a tag: lowercase letters, digits, '-'" })
)

export const PublishRequest = Schema.Struct({
  agentName: AgentName,
  description: Schema.String.check(Schema.isBetweenLength(1, 2_000)),
  category: Category,
  tags: Schema.optionalKey(Schema.Array(Tag).check(Schema.isMaxLength(16))),
  readme: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(50_000))),
  /** The JSON Schema an invocation's input must match (any JSON value when absent). */
  inputSchema: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
})
export type PublishRequest = typeof PublishRequest.Type

export const Listing = Schema.Struct({
  slug: Schema.String,
  sellerTenant: Schema.String,
  agentName: Schema.String,
  /** The agent version invocations run and forks copy: the latest when it was (re)published. */
  agentVersion: Schema.Int,
  agentVersionDigest: Schema.String,
  description: Schema.String,
  category: Schema.String,
  tags: Schema.Array(Schema.String),
  readme: Schema.String,
  inputSchema: Schema.Record(Schema.String, Schema.Unknown),
  publishedAt: Schema.String,
  updatedAt: Schema.String
})
export type Listing = typeof Listing.Type

export const ListingQuery = Schema.Struct({
  category: Schema.optionalKey(Category),
  /** Words that must all appear in the slug, agent name, description, tags or readme (case-insensitive). */
  q: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(200)))
})

export const ForkRequest = Schema.Struct({ newName: Schema.optionalKey(AgentName) })
export type ForkRequest = typeof ForkRequest.Type

export const InvokeRequest = Schema.Struct({ input: Schema.Unknown })
export type InvokeRequest = typeof InvokeRequest.Type

export const SETTLEMENT_VERSION = 1

/** What a settlement receipt signs: who bought what from whom, the run it was, and what it cost the seller. */
export const UnsignedSettlement = Schema.Struct({
  kind: Schema.Literal("settlement"),
  version: Schema.Literal(SETTLEMENT_VERSION),
  invocationId: Schema.String,
  buyerTenant: Schema.String,
  sellerTenant: Schema.String,
  agent: Schema.String,
  agentVersion: Schema.Int,
  runId: Schema.String,
  status: Schema.Literals(["succeeded", "failed", "canceled"]),
  costUsd: Schema.Finite,
  issuedAt: Schema.String,
  keyId: Schema.String
})
export type UnsignedSettlement = typeof UnsignedSettlement.Type
export const SettlementReceipt = Schema.Struct({ ...UnsignedSettlement.fields, signature: Schema.String })
export type SettlementReceipt = typeof SettlementReceipt.Type

export const Invocation = Schema.Struct({
  invocationId: Schema.String,
  slug: Schema.String,
  buyerTenant: Schema.String,
  sellerTenant: Schema.String,
  runId: Schema.String,
  status: Schema.Literals(["succeeded", "failed", "canceled"]),
  output: Schema.Unknown,
  costUsd: Schema.Finite,
  receipt: SettlementReceipt,
  createdAt: Schema.String
})
export type Invocation = typeof Invocation.Type

export const InvocationQuery = Schema.Struct({
  /** Invocations the caller's tenant made (`buyer`, the default) or served (`seller`). */
  as: Schema.optionalKey(Schema.Literals(["buyer", "seller"]))
})

// offline verification: pure and free of Effect, so the SDK bundles the very checks (schema/Settlement.ts)
export { isSettlement, settlementBytes, verifySettlement } from "./Settlement.ts"
