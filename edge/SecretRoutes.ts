// Secrets over HTTP: write-only values (`POST /v1/secrets`), metadata to read (`GET`), `DELETE`, and the
// operator's rewrap after a KEK rotation. No answer, error, log line or span carries a value.
import { Effect, Redacted } from "effect"
import { Audit } from "../actors/audit/Audit.ts"
import * as Secrets from "../actors/secrets/Secrets.ts"
import { badRequest } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

const valueOf = (value: unknown) =>
  Effect.gen(function*() {
    if (typeof value !== "string") return yield* badRequest("value", "Expected a string")
    if (value.length === 0) return yield* badRequest("value", "Expected a non-empty string")
    const bytes = Buffer.byteLength(value, "utf8")
    if (bytes > Secrets.MAX_VALUE_BYTES)
      return yield* badRequest("value", `Expected at most ${Secrets.MAX_VALUE_BYTES} bytes (got ${bytes})`)
    return Redacted.make(value)
  })

export const secretHandlers = handlers({
  // a second POST of a name stores its next version (200); the first answers 201
  createSecret: ({ tenant, principal, body: request }) =>
    Effect.gen(function*() {
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
      return reply(created ? 201 : 200, secret, { location: `/v1/secrets/${secret.name}` })
    }),
  listSecrets: ({ tenant }) =>
    Effect.gen(function*() {
      return { items: yield* (yield* Secrets.Secrets).list(tenant) }
    }),
  getSecret: ({ tenant, params: { name } }) => Secrets.Secrets.use((s) => s.get(tenant, name)),
  deleteSecret: ({ tenant, principal, params: { name } }) =>
    Effect.gen(function*() {
      yield* (yield* Secrets.Secrets).remove(tenant, name)
      yield* (yield* Audit).record({
        tenant,
        action: "secret.deleted",
        actor: actorOf(principal),
        target: name,
        outcome: "allowed",
        detail: {}
      })
      return null
    }),
  // deployment-wide: after LANTERN_KEK changes (the old one in LANTERN_KEK_PREVIOUS), re-seal under the new one
  rewrapSecrets: () => Secrets.Secrets.use((s) => s.rewrap)
})
