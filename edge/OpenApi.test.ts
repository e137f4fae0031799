// The OpenAPI document generated from the declaration (edge/Api.ts) is valid OpenAPI 3.1 by a third-party
// validator, and says what the router does: one operation per endpoint, the scope it checks, the failures it answers.
import { Validator } from "@seriousme/openapi-schema-validator"
import { describe, expect, it } from "vitest"
import * as Api from "./Api.ts"
import { openApiPath } from "./Endpoint.ts"
import { document, make } from "./OpenApi.ts"
import { failuresOf } from "./Serve.ts"

const operation = (path: string, method: string): any =>
  (document().paths as any)[openApiPath(path)][method.toLowerCase()]

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)", async () => {
    const result = await new Validator().validate(structuredClone(document()) as never)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
  })

  it("a broken document fails the same validator (the check can fail)", async () => {
    const broken = structuredClone(make(Api.every)) as any
    broken.paths["/v1/runs"].get.responses = "none"
    expect((await new Validator().validate(broken)).valid).toBe(false)
  })

  it("has one operation per endpoint, named by it, with its scope or no security when public", () => {
    const operations = Object.values(document().paths).flatMap((item) => Object.values(item as object))
    expect(operations).toHaveLength(Api.every.length)
    for (const e of Api.every) {
      const op = operation(e.path, e.method)
      expect(op.operationId).toBe(e.name)
      if (e.scope === null) expect(op.security, e.name).toEqual([])
      else expect(op["x-lantern-scope"], e.name).toBe(e.scope)
    }
  })

  it("documents every status an endpoint can answer: its successes and each declared failure", () => {
    for (const e of Api.every) {
      const statuses = Object.keys(operation(e.path, e.method).responses)
      for (const s of Object.keys(e.success)) expect(statuses, `${e.name} ${s}`).toContain(s)
      for (const f of failuresOf(e)) expect(statuses, `${e.name} ${f.tag}`).toContain(String(f.status))
      expect(statuses, e.name).toContain("500")
      if (e.scope !== null) expect(statuses, e.name).toEqual(expect.arrayContaining(["401", "403"]))
      if (e.body !== undefined) expect(statuses, e.name).toEqual(expect.arrayContaining(["413", "415"]))
    }
  })

  it("closes request objects (unknown fields are refused) and leaves answers open", () => {
    const create = operation("/v1/agents", "POST")
    expect(create.requestBody.content["application/json"].schema.additionalProperties).toBe(false)
    expect(create.responses["201"].content["application/json"].schema.additionalProperties).toBe(true)
  })
})
