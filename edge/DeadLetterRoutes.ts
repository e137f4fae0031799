// GET /v1/admin/dead-letters: the events the projectors skipped because they could not decode or store them,
// every tenant's, newest first (scope `admin`, the operator's). Never a payload: where, which tenant, why (ADR 0022).
import { Effect, Layer, Schema } from "effect"
import * as DeadLetters from "../projections/DeadLetters.ts"
import { decode, json, query } from "./Http.ts"
import { authed, route } from "./Routes.ts"

/** `limit`: 1 to 1000 in plain decimal digits; 100 when absent. */
const Limit = Schema.String.check(
  Schema.isPattern(/^(1000|[1-9]\d{0,2})$/, { message: "Expected an integer from 1 to 1000" })
)
const DeadLetterQuery = Schema.Struct({ limit: Schema.optionalKey(Limit) })

export const DeadLetterView = Schema.Struct({
  projector: Schema.String,
  stream: Schema.String,
  seq: Schema.Number,
  tenant: Schema.String,
  subject: Schema.String,
  eventType: Schema.NullOr(Schema.String),
  reason: Schema.String,
  failedAt: Schema.String
})

export const deadLetterRoutes = Layer.mergeAll(
  // deployment-wide: the scope `admin`, which only the operator tenant's keys hold (Scopes.ts)
  route(
    "GET",
    "/v1/admin/dead-letters",
    authed(() =>
      Effect.gen(function*() {
        const q = yield* decode(DeadLetterQuery, yield* query)
        const items = yield* DeadLetters.list(q.limit === undefined ? DeadLetters.DEFAULT_LIMIT : Number(q.limit))
        return json({ items, total: yield* DeadLetters.count })
      })
    )
  )
)
