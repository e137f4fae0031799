// GET /v1/admin/dead-letters: the events the projectors skipped because they could not decode or store them,
// every tenant's, newest first (scope `admin`, the operator's). Never a payload: where, which tenant, why (ADR 0022).
import { Effect } from "effect"
import * as DeadLetters from "../projections/DeadLetters.ts"
import { handlers } from "./Serve.ts"

export const deadLetterHandlers = handlers({
  // deployment-wide: the scope `admin`, which only the operator tenant's keys hold (Scopes.ts)
  listDeadLetters: ({ query }) =>
    Effect.gen(function*() {
      const items = yield* DeadLetters.list(
        query.limit === undefined ? DeadLetters.DEFAULT_LIMIT : Number(query.limit)
      )
      return { items, total: yield* DeadLetters.count }
    })
})
