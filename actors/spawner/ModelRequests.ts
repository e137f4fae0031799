// A workload's model calls through its harness (lantern.spawner.model.<tenant>.<id>, ADR 0062): the token, the
// workload, the budgets, then the router; journaled without content. The wire shapes are ModelCalls.ts's.
import { Clock, Duration, Effect } from "effect"
import { Audit } from "../audit/Audit.ts"
import { Budgets } from "../budget/Budgets.ts"
import { ModelProvider } from "../model/ModelProvider.ts"
import * as Decider from "./Decider.ts"
import { type Authenticate, refused } from "./HarnessAuth.ts"
import { enc, read, type Request } from "./HarnessBus.ts"
import * as ModelCalls from "./ModelCalls.ts"
import type { WorkloadJournal } from "./WorkloadJournal.ts"

/** How long a workload's model call may take (the harness waits a little longer for the answer). */
const MODEL_CALL_TIMEOUT_MS = 120_000
const MODEL_UNAVAILABLE = ModelCalls.error(503, "api_error", "unavailable", "the model call could not be made; retry")

/** The handler of model requests from any harness, on any host. */
export const handler = ({ execute, load }: WorkloadJournal, authenticate: Authenticate) =>
  Effect.gen(function*() {
    const audit = yield* Audit
    const budgets = yield* Budgets
    const models = yield* ModelProvider
    return (m: Request) =>
      Effect.gen(function*() {
        const asked = read<{ token: unknown; body: unknown }>(m, "lantern.spawner.model.")
        if (asked === null) return
        const { who, body: { token, body } } = asked
        const answer = (a: ModelCalls.Answer) => Effect.sync(() => m.respond(enc(a)))
        // a refused caller is audited as a refused secret is: the reason on record, one answer to the caller
        const refuse = (reason: string) =>
          refused(
            audit,
            who,
            { action: "workload.model.refused", target: `workload:${who.id}`, reason },
            answer(ModelCalls.REFUSED)
          )
        const { state } = yield* load(who.tenant, who.id)
        if (state.status === "none" || Decider.isFinished(state) || state.spec === null) {
          return yield* refuse("the workload is not running")
        }
        const checked = yield* authenticate(who.tenant, who.id, token)
        if (checked._tag === "Refused") return yield* refuse(checked.reason)
        const callId = crypto.randomUUID()
        const key = `${who.id}:model:${callId}`
        const parsed = ModelCalls.parse(body, who.tenant, key)
        if (parsed._tag === "Invalid") return yield* answer(parsed.answer)
        const request = parsed.request
        const agentName = state.spec.metadata.name
        const started = yield* Clock.currentTimeMillis
        // the spec's own cap first: what the workload has spent plus this call's worst case
        const maxCost = state.spec.spec.limits.maxCostUsd
        if (maxCost !== undefined) {
          const quote = yield* models.quote(request)
          if (state.costUsd + quote.worstCaseUsd > maxCost) {
            return yield* answer(ModelCalls.error(
              402,
              "insufficient_quota",
              "budget_exceeded",
              `the workload's limits.maxCostUsd ($${maxCost}) leaves no room: $${state.costUsd} spent, this call may cost $${quote.worstCaseUsd}`
            ))
          }
        }
        // then the agent's and the tenant's budgets, exactly as a run's model step reserves them
        const hold = yield* Effect.result(budgets.reserve({
          tenant: who.tenant,
          agentName,
          runId: who.id,
          reservationId: key,
          quote: models.quote(request),
          run: { costUsd: state.costUsd, tokens: state.tokensIn + state.tokensOut, toolCalls: 0 },
          expiresAt: started + MODEL_CALL_TIMEOUT_MS + 60_000
        }))
        if (hold._tag === "Failure") {
          const e = hold.failure
          if (e._tag !== "BudgetExceeded") return yield* answer(MODEL_UNAVAILABLE)
          return yield* answer(ModelCalls.error(402, "insufficient_quota", "budget_exceeded", e.refusal.reason))
        }
        const outcome = yield* Effect.result(
          models.complete(request).pipe(Effect.timeout(Duration.millis(MODEL_CALL_TIMEOUT_MS)))
        )
        const used = outcome._tag === "Success"
          ? { costUsd: outcome.success.costUsd, tokens: outcome.success.tokensIn + outcome.success.tokensOut }
          : { costUsd: 0, tokens: 0 }
        if (hold.success.scopes.length > 0) yield* budgets.settle(hold.success, used).pipe(Effect.ignore)
        if (outcome._tag === "Failure") {
          const e = outcome.failure
          return yield* answer(ModelCalls.error(
            e._tag === "ProviderError" && e.kind === "rate_limited" ? 429 : 502,
            "api_error",
            e._tag === "ProviderError" ? e.kind : "timeout",
            e._tag === "ProviderError" ? e.message : `the model call took longer than ${MODEL_CALL_TIMEOUT_MS} ms`
          ))
        }
        const response = outcome.success
        const finished = yield* Clock.currentTimeMillis
        yield* execute(who.tenant, who.id, {
          _tag: "ModelCalled",
          call: {
            model: request.model,
            chosen: response.route?.chosen ?? `${response.answer.provider}/${response.answer.model}`,
            cached: response.route?.cached ?? false,
            finishReason: response.answer.finishReason,
            tokensIn: response.tokensIn,
            tokensOut: response.tokensOut,
            costUsd: response.costUsd,
            durationMs: finished - started
          }
        }, key).pipe(Effect.ignore)
        yield* answer(ModelCalls.completion(callId, Math.floor(finished / 1000), response))
      }).pipe(
        Effect.catchCause((cause) =>
          Effect.andThen(
            Effect.logWarning("a workload's model call failed", cause),
            Effect.sync(() => m.respond(enc(MODEL_UNAVAILABLE)))
          )
        )
      )
  })
