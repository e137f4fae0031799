// Liveness, readiness and the API document.
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Nats } from "../bus/Nats.ts"
import * as DeadLetters from "../projections/DeadLetters.ts"
import { Sql } from "../projections/Sql.ts"
import { Auth } from "./Auth.ts"
import * as Failures from "./Failures.ts"
import { errorResponse, json } from "./Http.ts"
import { document } from "./OpenApi.ts"
import { handled } from "./Serve.ts"

const check = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
  eff.pipe(Effect.timeout("2 seconds"), Effect.as("ok"), Effect.catchCause(() => Effect.succeed("unavailable")))

export const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/healthz", HttpServerResponse.text("ok")),
  HttpRouter.add(
    "GET",
    "/readyz",
    Effect.gen(function*() {
      const { jsm, nc, embedded } = yield* Nats
      const sql = yield* Sql
      const bus = yield* check(Effect.tryPromise(() => jsm.getAccountInfo()))
      const database = yield* check(sql.query("select 1"))
      const ready = bus === "ok" && database === "ok"
      // events the projectors skipped (ADR 0022): an alert for the operator, not a reason to take the host out
      const deadLetters = database === "ok"
        ? yield* DeadLetters.count.pipe(Effect.timeout("2 seconds"), Effect.catchCause(() => Effect.succeed(null)))
        : null
      // which server, and whether a write is on its disk before it is acknowledged (known for the embedded one)
      const nats = {
        version: nc.info?.version ?? null,
        sync: embedded === null ? "server-configured" : embedded.syncAlways ? "always" : "interval"
      }
      return json({ bus, database, deadLetters, nats }, ready ? 200 : 503)
    })
  ),
  HttpRouter.add(
    "GET",
    "/v1/openapi.json",
    handled(
      [...Failures.standard, ...Failures.authenticated],
      Effect.gen(function*() {
        yield* (yield* Auth).principal
        return json(document())
      })
    )
  ),
  HttpRouter.add("*", "/*", errorResponse(404, "not_found", "no such route"))
)

const decodable = (url: string) => {
  // a path with no percent sign (nor a `//` that would make it an authority) has nothing to decode: every API call
  if (url.startsWith("/") && !url.startsWith("//") && !url.includes("%")) return true
  try {
    decodeURIComponent(new URL(url, "http://localhost").pathname)
    return true
  } catch {
    return false
  }
}

/**
 * Requests the router cannot even match (a path with malformed percent-encoding never reaches the catch-all
 * route, and the router answers an empty 404) get a JSON 400 naming the path instead.
 */
export const unroutable = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (decodable(request.url)) return yield* app
    return errorResponse(400, "invalid_request", "the request is invalid", [
      { field: "(path)", message: "malformed percent-encoding in the URL path" }
    ])
  })
