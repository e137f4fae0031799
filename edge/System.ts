// Liveness, readiness and the API document.
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { Nats } from "../bus/Nats.ts"
import { Sql } from "../projections/Sql.ts"
import { Auth } from "./Auth.ts"
import { errorResponse, handled, json } from "./Http.ts"
import { document } from "./OpenApi.ts"

const check = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
  eff.pipe(Effect.timeout("2 seconds"), Effect.as("ok"), Effect.catchCause(() => Effect.succeed("unavailable")))

export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/healthz", HttpServerResponse.text("ok")),
  HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
    const { jsm } = yield* Nats
    const sql = yield* Sql
    const bus = yield* check(Effect.tryPromise(() => jsm.getAccountInfo()))
    const database = yield* check(sql.query("select 1"))
    const ready = bus === "ok" && database === "ok"
    return json({ bus, database }, ready ? 200 : 503)
  })),
  HttpRouter.add("GET", "/v1/openapi.json", handled(Effect.gen(function*() {
    yield* (yield* Auth).principal
    return json(document)
  }))),
  HttpRouter.add("*", "/*", errorResponse(404, "not_found", "no such route"))
)
