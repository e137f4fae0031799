// The router derived from declarations: answers with the declared status, maps a declared failure to its status
// and code, answers 500 (telling nothing) for an undeclared one, opens public endpoints to any origin, and, in the
// check mode the test stacks run in, refuses to send a JSON answer its documented schema does not describe.
import { Effect, Layer, Schema } from "effect"
import { HttpRouter } from "effect/http"
import { afterAll, describe, expect, it } from "vitest"
import { Audit } from "../actors/audit/Audit.ts"
import { AgentNotFound, RunNotFound } from "../schema/Errors.ts"
import { Auth } from "./Auth.ts"
import { Json, make } from "./Endpoint.ts"
import * as F from "./Failures.ts"
import * as Serve from "./Serve.ts"

const Answer = Schema.Struct({ n: Schema.Number })
const endpoints = [
  make("good", { method: "GET", path: "/t/good", scope: null, summary: "", success: { 200: Json(Answer, "ok") } }),
  make("bad", { method: "GET", path: "/t/bad", scope: null, summary: "", success: { 200: Json(Answer, "ok") } }),
  make("fails", {
    method: "GET",
    path: "/t/fails",
    scope: null,
    summary: "",
    success: { 200: Json(Answer, "ok") },
    failures: [F.RunNotFound]
  }),
  make("undeclared", {
    method: "GET",
    path: "/t/undeclared",
    scope: null,
    summary: "",
    success: { 200: Json(Answer, "ok") }
  })
] as const

const handlers = {
  good: () => Effect.succeed({ n: 1 }),
  bad: () => Effect.succeed({ n: "one", extra: true } as unknown as { n: number }),
  fails: () => Effect.fail(new RunNotFound({ id: "run_x" })),
  undeclared: () => Effect.fail(new AgentNotFound({ name: "a" }) as unknown as RunNotFound)
}

// public endpoints never reach these: they stand in for the services a scoped endpoint would use
const unused = Layer.mergeAll(
  Layer.succeed(Auth, Auth.of({ principal: Effect.die("not used"), forget: () => Effect.void })),
  Layer.succeed(Audit, {} as never)
)

const serve = (check: boolean) => {
  const web = HttpRouter.toWebHandler(
    (Serve.layer(endpoints, handlers as never, { check }) as Layer.Layer<never>).pipe(Layer.provide(unused)),
    { disableLogger: true }
  )
  return { get: (path: string) => web.handler(new Request(`http://localhost${path}`)), dispose: web.dispose }
}
const checked = serve(true)
const unchecked = serve(false)
afterAll(async () => {
  await checked.dispose()
  await unchecked.dispose()
})

describe("Serve", () => {
  it("answers a declared success, any origin for a public endpoint", async () => {
    const r = await checked.get("/t/good")
    expect(r.status).toBe(200)
    expect(await r.json()).toEqual({ n: 1 })
    expect(r.headers.get("access-control-allow-origin")).toBe("*")
  })

  it("maps a declared failure to its status and code", async () => {
    const r = await checked.get("/t/fails")
    expect(r.status).toBe(404)
    expect(((await r.json()) as any).error).toMatchObject({ code: "run_not_found" })
    expect(r.headers.get("access-control-allow-origin")).toBe("*")
  })

  it("answers an undeclared failure with a 500 that tells nothing", async () => {
    const r = await checked.get("/t/undeclared")
    expect(r.status).toBe(500)
    expect(await r.json()).toEqual({ error: { code: "internal", message: "internal error" } })
  })

  it("in check mode, refuses an answer its schema does not describe, naming why", async () => {
    const r = await checked.get("/t/bad")
    expect(r.status).toBe(500)
    const body = (await r.json()) as any
    expect(body.error.code).toBe("undocumented_response")
    expect(body.error.message).toMatch(/n|extra/)
    // without the check, the answer goes out as the handler made it
    expect((await unchecked.get("/t/bad")).status).toBe(200)
  })
})
