// Secrets over HTTP: write-only values (`POST /v1/secrets`), metadata to read (`GET`), `DELETE`, and the
// operator's rewrap after a KEK rotation. No answer, error, log line or span carries a value.
import { Effect, Layer, Redacted, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { Audit } from "../actors/audit/Audit.ts"
import * as Secrets from "../actors/secrets/Secrets.ts"
import { Auth } from "./Auth.ts"
import { badRequest, body, decode, json } from "./Http.ts"
import { actorOf, authed, param, route } from "./Routes.ts"

export const SecretName = Schema.String.check(
  Schema.makeFilter((s: string) => Secrets.isName(s), {
    expected: `a secret name matching ${Secrets.NAME_PATTERN.source}, without '..' or a trailing '.'`
  })
)

/** The body of `POST /v1/secrets`. `value` is checked by hand, so no schema message can quote it. */
export const CreateSecretRequest = Schema.Struct({ name: SecretName, value: Schema.Unknown })
/** What the OpenAPI document shows of it. */
export const CreateSecretDoc = Schema.Struct({ name: SecretName, value: Schema.String.check(Schema.isMinLength(1)) })

const secretName = Effect.flatMap(param, (p) => decode(SecretName, p["name"], "name"))

const valueOf = (value: unknown) =>
  Effect.gen(function*() {
    if (typeof value !== "string") return yield* badRequest("value", "Expected a string")
    if (value.length === 0) return yield* badRequest("value", "Expected a non-empty string")
    const bytes = Buffer.byteLength(value, "utf8")
    if (bytes > Secrets.MAX_VALUE_BYTES)
      return yield* badRequest("value", `Expected at most ${Secrets.MAX_VALUE_BYTES} bytes (got ${bytes})`)
    return Redacted.make(value)
  })

export const secretRoutes = Layer.mergeAll(
  // a second POST of a name stores its next version (200); the first answers 201
  route(
    "POST",
    "/v1/secrets",
    authed((tenant) =>
      Effect.gen(function*() {
        const principal = yield* (yield* Auth).principal
        const request = yield* body(CreateSecretRequest)
        const value = yield* valueOf(request.value)
        const { secret, created } = yield* (yield* Secrets.Secrets).put(tenant, request.name, value)
        yield* (yield* Audit).record({
          tenant,
          action: "secret.created",
          actor: actorOf(principal),
          target: secret.name,
          outcome: "allowed",
          detail: { version: String(secret.version) }
        })
        return json(secret, created ? 201 : 200, { location: `/v1/secrets/${secret.name}` })
      })
    )
  ),
  route(
    "GET",
    "/v1/secrets",
    authed((tenant) =>
      Effect.gen(function*() {
        return json({ items: yield* (yield* Secrets.Secrets).list(tenant) })
      })
    )
  ),
  route(
    "GET",
    "/v1/secrets/:name",
    authed((tenant) =>
      Effect.gen(function*() {
        const name = yield* secretName
        return json(yield* (yield* Secrets.Secrets).get(tenant, name))
      })
    )
  ),
  route(
    "DELETE",
    "/v1/secrets/:name",
    authed((tenant) =>
      Effect.gen(function*() {
        const principal = yield* (yield* Auth).principal
        const name = yield* secretName
        yield* (yield* Secrets.Secrets).remove(tenant, name)
        yield* (yield* Audit).record({
          tenant,
          action: "secret.deleted",
          actor: actorOf(principal),
          target: name,
          outcome: "allowed",
          detail: {}
        })
        return HttpServerResponse.empty({ status: 204 })
      })
    )
  ),
  // deployment-wide: after LANTERN_KEK changes (the old one in LANTERN_KEK_PREVIOUS), re-seal under the new one
  route(
    "POST",
    "/v1/admin/secrets/rewrap",
    authed(() =>
      Effect.gen(function*() {
        return json(yield* (yield* Secrets.Secrets).rewrap)
      })
    )
  )
)
