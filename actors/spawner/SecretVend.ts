// Secrets vended to a workload's harness (lantern.spawner.vend.<tenant>.<id>, ADR 0046): the token, the workload,
// the declaration, then the secret; every answer, given or refused, is audited.
import { Effect, Redacted } from "effect"
import { Audit } from "../audit/Audit.ts"
import { Secrets } from "../secrets/Secrets.ts"
import * as Decider from "./Decider.ts"
import { type Authenticate, refused } from "./HarnessAuth.ts"
import { enc, read, type Request } from "./HarnessBus.ts"
import type { WorkloadJournal } from "./WorkloadJournal.ts"

/** The handler of vend requests from any harness, on any host. */
export const handler = ({ execute, load }: WorkloadJournal, authenticate: Authenticate) =>
  Effect.gen(function*() {
    const audit = yield* Audit
    const secrets = yield* Secrets
    return (m: Request) =>
      Effect.gen(function*() {
        const asked = read<{ envName: string; token: string }>(m, "lantern.spawner.vend.")
        if (asked === null) return
        const { who, body: { envName, token } } = asked
        const refuse = (reason: string) =>
          refused(
            audit,
            who,
            { action: "workload.secret.vended", target: String(envName).slice(0, 128), reason },
            Effect.sync(() => m.respond(enc({ error: "refused" })))
          )
        const { state } = yield* load(who.tenant, who.id)
        const declared = (state.spec?.spec.secrets ?? []).find((s) => s.envName === envName)
        if (state.status === "none" || Decider.isFinished(state)) return yield* refuse("the workload is not running")
        if (declared === undefined) return yield* refuse("the spec does not declare it")
        const token_ = yield* authenticate(who.tenant, who.id, token)
        if (token_._tag === "Refused") return yield* refuse(token_.reason)
        const verdict = token_.verdict
        const value = yield* Effect.result(secrets.resolve(who.tenant, declared.secretRef, `workload:${who.id}`))
        if (value._tag === "Failure") return yield* refuse(`secret: ${value.failure._tag}`)
        const vended = yield* Effect.result(
          execute(
            who.tenant,
            who.id,
            { _tag: "Vend", envName },
            `${who.id}:vend:${envName}:${verdict.claims.jti}:${Date.now()}`
          )
        )
        if (vended._tag === "Failure") return yield* refuse("the workload is not running")
        yield* audit.record({
          tenant: who.tenant,
          action: "workload.secret.vended",
          actor: `workload:${who.id}`,
          target: envName,
          outcome: "allowed",
          detail: {}
        })
        m.respond(enc({ value: Redacted.value(value.success) }))
      }).pipe(
        Effect.catchCause((cause) =>
          Effect.andThen(
            Effect.logWarning("a secret was not vended", cause),
            Effect.sync(() => m.respond(enc({ error: "refused" })))
          )
        )
      )
  })
