import { describe, expect, it } from "vitest"
import type { AgentSpec, ResolvedSpec } from "../../schema/AgentSpec.ts"
import type { AgentCommand } from "../../schema/Commands.ts"
import type { AgentEvent } from "../../schema/Events.ts"
import { fold } from "../kernel/Decider.ts"
import { given } from "../kernel/given.ts"
import * as Agent from "./Decider.ts"

const spec: AgentSpec = { systemPrompt: "You are a careful assistant." }
const resolved: ResolvedSpec = { systemPrompt: "You are a careful assistant.", model: "auto", maxTurns: 8, tools: [] }

const create: AgentCommand = { _tag: "CreateAgent", name: "helper", description: "helps", spec, digest: "sha256:v1" }
const created: AgentEvent = {
  _tag: "AgentCreated",
  name: "helper",
  description: "helps",
  version: 1,
  digest: "sha256:v1",
  spec: resolved
}

const publish = (fields: { digest: string; description?: string; spec?: AgentSpec }): AgentCommand => ({
  _tag: "PublishAgentVersion",
  name: "helper",
  spec: fields.spec ?? spec,
  digest: fields.digest,
  ...(fields.description === undefined ? {} : { description: fields.description })
})

const published = (version: number, digest: string, description = "helps", s: ResolvedSpec = resolved): AgentEvent => ({
  _tag: "AgentVersionPublished",
  name: "helper",
  description,
  version,
  digest,
  spec: s
})

describe("Agent decider", () => {
  describe("CreateAgent", () => {
    it("creates version 1 with every spec default resolved (model auto, 8 turns, no tools)", () =>
      given(Agent.decider, []).when(create).then([created]))

    it("keeps explicitly given spec fields", () => {
      const tool = { name: "calculator", description: "math", parameters: { type: "object" } }
      const full: AgentSpec = { systemPrompt: "p", model: "smart", maxTurns: 3, tools: [tool] }
      given(Agent.decider, []).when({ ...create, spec: full }).then([
        { ...created, spec: { systemPrompt: "p", model: "smart", maxTurns: 3, tools: [tool] } }
      ])
    })

    it("refuses to create an agent that already exists", () => {
      const error = given(Agent.decider, [created]).when(create).thenFails("AgentAlreadyExists")
      expect(error.name).toBe("helper")
    })

    it("refuses a second create even with a different spec and after later versions", () =>
      void given(Agent.decider, [created, published(2, "sha256:v2")])
        .when({ ...create, digest: "sha256:other" })
        .thenFails("AgentAlreadyExists"))
  })

  describe("PublishAgentVersion", () => {
    it("refuses to publish to an agent that does not exist", () => {
      const error = given(Agent.decider, []).when(publish({ digest: "sha256:v2" })).thenFails("AgentNotFound")
      expect(error.name).toBe("helper")
    })

    it("is a no-op for the same digest and description", () =>
      given(Agent.decider, [created]).when(publish({ digest: "sha256:v1", description: "helps" })).then([]))

    it("is a no-op for the same digest when the description is omitted (it is inherited)", () =>
      given(Agent.decider, [created]).when(publish({ digest: "sha256:v1" })).then([]))

    it("publishes version 2 for a changed digest, inheriting the description", () => {
      const changed: AgentSpec = { systemPrompt: "Be brief.", maxTurns: 2 }
      given(Agent.decider, [created]).when(publish({ digest: "sha256:v2", spec: changed })).then([
        published(2, "sha256:v2", "helps", { systemPrompt: "Be brief.", model: "auto", maxTurns: 2, tools: [] })
      ])
    })

    it("publishes a new version for a description-only change", () =>
      given(Agent.decider, [created]).when(publish({ digest: "sha256:v1", description: "helps a lot" })).then([
        published(2, "sha256:v1", "helps a lot")
      ]))

    it("compares with the latest version only: reverting to an older digest is a new version", () =>
      given(Agent.decider, [created, published(2, "sha256:v2")]).when(publish({ digest: "sha256:v1" })).then([
        published(3, "sha256:v1")
      ]))

    it("is a no-op when republishing the latest version", () =>
      given(Agent.decider, [created, published(2, "sha256:v2", "new")])
        .when(publish({ digest: "sha256:v2", description: "new" }))
        .then([]))
  })

  describe("evolve", () => {
    it("keeps every version in order, the latest last", () => {
      const state = fold(Agent.decider, [created, published(2, "sha256:v2"), published(3, "sha256:v3", "third")])
      expect(state.name).toBe("helper")
      expect(state.versions.map((v) => v.version)).toEqual([1, 2, 3])
      expect(Agent.latest(state)).toEqual({ version: 3, digest: "sha256:v3", description: "third", spec: resolved })
    })

    it("has no latest version before creation", () => {
      expect(Agent.latest(Agent.initialState)).toBeUndefined()
    })
  })
})
