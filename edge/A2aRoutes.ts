// A2A agent cards (ADR 0045): `PUT /v1/agents/{name}/visibility` makes an agent public, a public agent's card is at
// `/v1/agents/{name}/card`, and the deployment's card at `/.well-known/agent-card.json` lists every public agent as
// a skill. Cards carry URLs under the configured public base URL (LANTERN_PUBLIC_URL, else the edge's own).
import { Config, Context, Effect, Layer } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { type PublicAgent, Visibility } from "../actors/agent/Visibility.ts"
import * as Queries from "../projections/Queries.ts"
import { type AgentCard, type AgentSkill, PROTOCOL_VERSION } from "../schema/A2a.ts"
import { AgentNotFound } from "../schema/Errors.ts"
import { handlers } from "./Serve.ts"

/** The base URL clients reach this deployment at, without a trailing slash. */
export class PublicUrl extends Context.Service<PublicUrl, { readonly base: string }>()("lantern/edge/PublicUrl") {
  /** LANTERN_PUBLIC_URL, else `fallback` (the edge's own http://host:port). */
  static readonly layerConfig = (fallback: string) =>
    Layer.effect(
      PublicUrl,
      Effect.gen(function*() {
        const url = yield* Config.String("LANTERN_PUBLIC_URL").pipe(Config.withDefault(fallback))
        return PublicUrl.of({ base: url.replace(/\/+$/u, "") })
      }).pipe(Effect.orDie)
    )
}

/** Where a public agent takes A2A JSON-RPC requests. */
export const endpointPath = (tenant: string, agent: string) => `/a2a/${tenant}/${agent}`

const bearer = {
  bearer: {
    type: "http" as const,
    scheme: "bearer",
    description: "A Lantern API key of the agent's tenant: scope runs:write to send messages, runs:read to read tasks"
  }
}

const common = (base: string) => ({
  preferredTransport: "JSONRPC" as const,
  protocolVersion: PROTOCOL_VERSION,
  provider: { organization: "Lantern", url: base },
  capabilities: { streaming: true, pushNotifications: false, stateTransitionHistory: false },
  defaultInputModes: ["text/plain"],
  defaultOutputModes: ["text/plain", "application/json"],
  securitySchemes: bearer,
  security: [{ bearer: [] }]
})

interface Described {
  readonly description: string
  readonly latestVersion: number
}

const skillOf = (who: PublicAgent, agent: Described): AgentSkill => ({
  id: `${who.tenant}/${who.agent}`,
  name: who.agent,
  description: agent.description === "" ? `The Lantern agent ${who.agent}` : agent.description,
  tags: ["lantern", who.tenant]
})

/** A public agent's card: its one skill is itself, its url its own JSON-RPC endpoint. */
export const agentCard = (base: string, who: PublicAgent, agent: Described): AgentCard => ({
  name: who.agent,
  description: skillOf(who, agent).description,
  url: `${base}${endpointPath(who.tenant, who.agent)}`,
  version: String(agent.latestVersion),
  ...common(base),
  skills: [skillOf(who, agent)]
})

/** The agent as the read model has it, else as its actor does; none when it does not exist. */
const find = (tenant: string, name: string) =>
  Effect.gen(function*() {
    const projected = yield* Queries.getAgent(tenant, name)
    if (projected !== null) return projected
    return yield* (yield* Agents).get(tenant, name).pipe(
      Effect.catchTag("AgentNotFound", () => Effect.succeed(null))
    )
  })

export const a2aHandlers = handlers({
  setAgentVisibility: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      if ((yield* find(tenant, params.name)) === null) return yield* new AgentNotFound({ name: params.name })
      yield* (yield* Visibility).set(tenant, params.name, body.public)
      return { public: body.public }
    }),
  agentCard: ({ params, query }) =>
    Effect.gen(function*() {
      const published = (yield* (yield* Visibility).publicAgents(params.name)).filter((p) =>
        query.tenant === undefined || p.tenant === query.tenant
      )
      // an agent no tenant published, or one several did without `tenant` to choose: no card
      const [who] = published
      if (who === undefined || published.length > 1) return yield* new AgentNotFound({ name: params.name })
      const agent = yield* find(who.tenant, who.agent)
      if (agent === null) return yield* new AgentNotFound({ name: params.name })
      return agentCard((yield* PublicUrl).base, who, agent)
    }),
  deploymentCard: () =>
    Effect.gen(function*() {
      const { base } = yield* PublicUrl
      const skills: Array<AgentSkill> = []
      for (const who of yield* (yield* Visibility).publicAgents()) {
        const agent = yield* find(who.tenant, who.agent)
        if (agent !== null) skills.push(skillOf(who, agent))
      }
      return {
        name: "Lantern",
        description:
          "A Lantern deployment: each skill is a public agent; send a message to it at its own card's url (/v1/agents/{name}/card), or here with the skill's id in the message's metadata (`skill`)",
        url: `${base}/a2a`,
        version: "1",
        ...common(base),
        skills
      }
    })
})
