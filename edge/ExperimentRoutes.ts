// The A/B experiment routes (ADR 0058): start (versions that do not exist are 400 naming the field), list, read with
// figures (reviewing auto-promotion), conclude. Starting and concluding are audited.
import { Effect } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import type { Arm } from "../schema/Experiment.ts"
import * as Experiments from "./Experiments.ts"
import { BadRequest } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

export const experimentHandlers = handlers({
  startExperiment: ({ tenant, principal, body }) =>
    Effect.gen(function*() {
      const started = yield* (yield* Agents).startExperiment(tenant, body, actorOf(principal)).pipe(
        Effect.catchTag("AgentVersionNotFound", (e) =>
          Effect.fail(
            new BadRequest({
              issues: [{
                field: e.version === body.control ? "control" : "variant",
                message: `agent '${body.agentName}' has no version ${e.version}`
              }]
            })
          )),
        Effect.catchTag("ExperimentNotFound", Effect.die)
      )
      yield* Experiments.audited(tenant, started, actorOf(principal))
      return reply(201, started, { location: `/v1/experiments/${started.id}` })
    }),
  listExperiments: ({ tenant, query }) =>
    Effect.map(Agents.use((a) => a.experiments(tenant, query.agentName)), (items) => ({ items })),
  getExperiment: ({ tenant, params }) =>
    Effect.gen(function*() {
      const experiment = yield* (yield* Agents).experiment(tenant, params.id)
      return yield* Experiments.review(tenant, experiment)
    }),
  concludeExperiment: ({ tenant, principal, params, body }) =>
    Effect.gen(function*() {
      const agents = yield* Agents
      const experiment = yield* agents.experiment(tenant, params.id)
      if (experiment.status === "concluded") return yield* Experiments.withResults(tenant, experiment)
      const figured = yield* Experiments.withResults(tenant, experiment)
      // without a winner named, the leading arm wins; control on a tie or when either arm has no score
      const winner: Arm = body?.winner ?? ((figured.lift ?? 0) > 0 ? "variant" : "control")
      const concluded = yield* agents.concludeExperiment(
        tenant,
        params.id,
        winner,
        actorOf(principal),
        body?.reason ?? `concluded by hand: ${winner} wins`
      ).pipe(
        Effect.catchTags({ AgentNotFound: Effect.die, AgentVersionNotFound: Effect.die, ExperimentRefused: Effect.die })
      )
      yield* Experiments.audited(tenant, concluded)
      return { ...concluded, results: figured.results, lift: figured.lift }
    })
})
