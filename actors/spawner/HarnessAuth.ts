// A harness's requests (secrets, model calls) carry its workload's identity token (ADR 0046): minted for the
// AUDIENCE below at each start, and checked here against the workload's own identity.
import { Clock, Effect } from "effect"
import type { Audit, AuditAction } from "../audit/Audit.ts"
import * as Identity from "../identity/Identity.ts"

/** The audience of a workload's identity token: the harness's secret vendor. */
export const AUDIENCE = "lantern-harness"

/** The workload's identity token checked against its identity: its own, for the harness, not expired. */
export const authenticate =
  (identities: Identity.Identities["Service"]) => (tenant: string, id: string, token: unknown) =>
    Effect.gen(function*() {
      const identity = yield* identities.ensure(tenant, id)
      const verdict = yield* Identity.check(String(token), identity, yield* Clock.currentTimeMillis, AUDIENCE)
      if (!verdict.valid) return { _tag: "Refused", reason: `token: ${verdict.reason}` } as const
      if (verdict.claims.sub !== Identity.subjectOf(tenant, id)) {
        return { _tag: "Refused", reason: "token: another workload's" } as const
      }
      return { _tag: "Valid", verdict } as const
    })

export type Authenticate = ReturnType<typeof authenticate>

/** A harness's request refused, on record: the workload as actor, the reason in the detail, then `answer` sent. */
export const refused = <A>(
  audit: Audit["Service"],
  who: { readonly tenant: string; readonly id: string },
  entry: { readonly action: AuditAction; readonly target: string; readonly reason: string },
  answer: Effect.Effect<A>
) =>
  Effect.andThen(
    audit.record({
      tenant: who.tenant,
      action: entry.action,
      actor: `workload:${who.id}`,
      target: entry.target,
      outcome: "denied",
      detail: { reason: entry.reason }
    }),
    answer
  )
