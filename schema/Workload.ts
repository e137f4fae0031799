// A workload: an agent's own code (a script, a coding agent, an MCP server) that Lantern runs in a sandbox whose
// strength matches how far the code is trusted (ADR 0046). The spec is what users write (agent.yaml / JSON); the
// events are the spawner's journal of one workload, lantern.workload.<tenant>.<id>.
import { Data, Schema } from "effect"
import { SecretRef } from "./AgentSpec.ts"

/** Isolation tiers, weakest first. A tier is provided by a backend at least that strong, never by a weaker one. */
export const TIERS = ["trusted", "standard", "untrusted", "hostile"] as const
export const Tier = Schema.Literals(TIERS)
export type Tier = typeof Tier.Type
export const tierRank = (tier: Tier): number => TIERS.indexOf(tier)

const Name = Schema.String.check(
  Schema.isPattern(/^[a-z0-9][a-z0-9_.-]{0,62}$/u, {
    message: "Expected a name: lowercase letters, digits, '.', '-' or '_', 1-63 characters"
  })
)

/** An egress rule's host: a name, `*.` and a domain (subdomains only), or an IP literal. */
export const EgressHost = Schema.String.check(
  Schema.isPattern(/^((\*\.)?[a-z0-9]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}|\[[0-9a-f:.]{2,45}\])$/u, {
    message: "Expected a host such as api.example.com, *.example.com, 203.0.113.7 or [2001:db8::1]"
  })
)

const Port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65_535 }))

export const EgressRule = Schema.Struct({
  host: EgressHost,
  /** Ports the rule allows; 443 when absent. */
  ports: Schema.optionalKey(Schema.Array(Port).check(Schema.isMinLength(1), Schema.isMaxLength(16)))
})
export type EgressRule = typeof EgressRule.Type

const EnvName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/u, { message: "Expected an environment variable name" })
)

export const WorkloadSecret = Schema.Struct({ envName: EnvName, secretRef: SecretRef })
export type WorkloadSecret = typeof WorkloadSecret.Type

export const Limits = Schema.Struct({
  vcpu: Schema.Finite.check(Schema.isBetween({ minimum: 0.05, maximum: 64 })),
  memoryMb: Schema.Int.check(Schema.isBetween({ minimum: 16, maximum: 262_144 })),
  timeoutSeconds: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 7 * 24 * 3600 })),
  maxCostUsd: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))
})
export type Limits = typeof Limits.Type

const Arg = Schema.String.check(Schema.isMaxLength(8192))

export const WorkloadBody = Schema.Struct({
  /** An OCI image for backends that pull one (kubernetes); the local backends run the host's file system, read-only. */
  image: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(512))),
  command: Schema.Array(Arg).check(Schema.isMinLength(1), Schema.isMaxLength(64)),
  args: Schema.optionalKey(Schema.Array(Arg).check(Schema.isMaxLength(256))),
  env: Schema.optionalKey(Schema.Record(EnvName, Schema.String.check(Schema.isMaxLength(8192)))),
  isolation: Tier,
  limits: Limits,
  network: Schema.Literals(["none", "allowlist"]),
  egressRules: Schema.optionalKey(Schema.Array(EgressRule).check(Schema.isMaxLength(64))),
  secrets: Schema.optionalKey(Schema.Array(WorkloadSecret).check(Schema.isMaxLength(32))),
  /** Whether starting it again after a host is lost is harmless; never assumed. */
  idempotent: Schema.optionalKey(Schema.Boolean)
})
export type WorkloadBody = typeof WorkloadBody.Type

export const WorkloadSpec = Schema.Struct({
  apiVersion: Schema.Literal("lantern.dev/v1"),
  kind: Schema.Literal("AgentSpec"),
  metadata: Schema.Struct({
    name: Name,
    labels: Schema.optionalKey(Schema.Record(Name, Schema.String.check(Schema.isMaxLength(256))))
  }),
  spec: WorkloadBody
})
export type WorkloadSpec = typeof WorkloadSpec.Type

/** Problems a decoded spec can still have, as `{field, message}` (the edge answers them with a 400). */
export const problems = (s: WorkloadSpec): ReadonlyArray<{ readonly field: string; readonly message: string }> => {
  const out: Array<{ field: string; message: string }> = []
  const rules = s.spec.egressRules ?? []
  if (s.spec.network === "none" && rules.length > 0) {
    out.push({ field: "spec.egressRules", message: "network 'none' takes no egress rules; set network: allowlist" })
  }
  const seen = new Set<string>()
  ;(s.spec.secrets ?? []).forEach((x, i) => {
    if (seen.has(x.envName)) out.push({ field: `spec.secrets[${i}].envName`, message: `${x.envName} is named twice` })
    seen.add(x.envName)
    if (s.spec.env?.[x.envName] !== undefined) {
      out.push({ field: `spec.secrets[${i}].envName`, message: `${x.envName} is also set in spec.env` })
    }
  })
  for (const name of Object.keys(s.spec.env ?? {})) {
    if (name.startsWith("LANTERN_")) {
      out.push({ field: `spec.env.${name}`, message: "LANTERN_* variables are set by the harness" })
    }
  }
  return out
}

// ---- the journal ----

export const Usage = Schema.Struct({
  wallMs: Schema.Finite,
  cpuMs: Schema.Finite,
  peakRssKb: Schema.NullOr(Schema.Finite)
})
export type Usage = typeof Usage.Type

export const WorkloadScheduled = Schema.TaggedStruct("WorkloadScheduled", {
  spec: WorkloadSpec,
  input: Schema.NullOr(Schema.String),
  by: Schema.String
})
export const WorkloadPlaced = Schema.TaggedStruct("WorkloadPlaced", { backend: Schema.String })
export const WorkloadSpawned = Schema.TaggedStruct("WorkloadSpawned", {
  host: Schema.String,
  /** The harness's process id on that host. */
  pid: Schema.Int,
  /** Limits the backend enforces (e.g. `memory`, `pids`, `cpu`, `timeout`); the rest are advisory there. */
  enforced: Schema.Array(Schema.String)
})
export const WorkloadIdentityMinted = Schema.TaggedStruct("WorkloadIdentityMinted", {
  keyId: Schema.String,
  expiresAt: Schema.String
})
export const WorkloadSecretVended = Schema.TaggedStruct("WorkloadSecretVended", { envName: Schema.String })
export const WorkloadHeartbeat = Schema.TaggedStruct("WorkloadHeartbeat", {
  at: Schema.String,
  cpuMs: Schema.Finite,
  rssKb: Schema.NullOr(Schema.Finite)
})
export const WorkloadOutput = Schema.TaggedStruct("WorkloadOutput", {
  stream: Schema.Literals(["stdout", "stderr"]),
  text: Schema.String
})
export const WorkloadEgress = Schema.TaggedStruct("WorkloadEgress", {
  host: Schema.String,
  port: Schema.Int,
  allowed: Schema.Boolean,
  /** The address connected to (allowed) or why not (refused). */
  detail: Schema.String
})
/**
 * A model call the workload made through its harness (ADR 0062), as the router answered it: what was asked for and
 * what answered, tokens, cost and time. Never the messages or the answer: a workload's prompts may hold its secrets.
 */
export const WorkloadModelCalled = Schema.TaggedStruct("WorkloadModelCalled", {
  /** The model asked for: a capability alias (`auto`, `fast`, …) or a model name. */
  model: Schema.String,
  /** `provider/model` that answered (the router's choice). */
  chosen: Schema.String,
  /** True when the router's response cache answered (no provider call, no cost). */
  cached: Schema.Boolean,
  finishReason: Schema.String,
  tokensIn: Schema.Int,
  tokensOut: Schema.Int,
  costUsd: Schema.Number,
  durationMs: Schema.Number
})
export type WorkloadModelCalled = typeof WorkloadModelCalled.Type
export const WorkloadAdopted = Schema.TaggedStruct("WorkloadAdopted", { host: Schema.String, from: Schema.String })
/** An `idempotent` workload whose harness was lost, started again (its attempt counts from 2). */
export const WorkloadRestarted = Schema.TaggedStruct("WorkloadRestarted", {
  reason: Schema.String,
  attempt: Schema.Int
})
export const WorkloadExited = Schema.TaggedStruct("WorkloadExited", { code: Schema.Int, usage: Usage })
export const WorkloadTerminated = Schema.TaggedStruct("WorkloadTerminated", {
  reason: Schema.String,
  by: Schema.String,
  usage: Schema.NullOr(Usage)
})
export const WorkloadFailed = Schema.TaggedStruct("WorkloadFailed", { reason: Schema.String })

export const WorkloadEvent = Schema.Union([
  WorkloadScheduled,
  WorkloadPlaced,
  WorkloadSpawned,
  WorkloadIdentityMinted,
  WorkloadSecretVended,
  WorkloadHeartbeat,
  WorkloadOutput,
  WorkloadEgress,
  WorkloadModelCalled,
  WorkloadAdopted,
  WorkloadRestarted,
  WorkloadExited,
  WorkloadTerminated,
  WorkloadFailed
])
export type WorkloadEvent = typeof WorkloadEvent.Type

export const TERMINAL_WORKLOAD_EVENTS: ReadonlySet<string> = new Set([
  "WorkloadExited",
  "WorkloadTerminated",
  "WorkloadFailed"
])

export const WorkloadState = Schema.Literals([
  "scheduled",
  "placed",
  "running",
  "exited",
  "terminated",
  "failed"
])
export type WorkloadState = typeof WorkloadState.Type

export class WorkloadNotFound extends Data.TaggedError("WorkloadNotFound")<{ readonly id: string }> {
  override get message() {
    return `workload '${this.id}' not found`
  }
}

/** A workload still going has no receipt yet (the edge answers 409 `workload_not_ended`). */
export class WorkloadNotEnded extends Data.TaggedError("WorkloadNotEnded")<{ readonly id: string }> {
  override get message() {
    return `workload '${this.id}' has not ended: its receipt is issued when it exits, is terminated or fails`
  }
}
