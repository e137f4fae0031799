// Run identity over HTTP: a running run's token for an audience (`/v1`), and the public verifier at
// /.well-known/lantern-agent-identity (no token, any origin) that checks a token against the run's journaled key.
import { Clock, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import * as Identity from "../actors/identity/Identity.ts"
import { Runs } from "../actors/run/Runs.ts"
import { RunAlreadyFinished } from "../schema/Errors.ts"
import { isRunId, RunId, TenantId } from "../schema/Ids.ts"
import { body, decode, handled, json } from "./Http.ts"
import { authed, param, route } from "./Routes.ts"

export const WELL_KNOWN = "/.well-known/lantern-agent-identity"
export const VERIFY_PATH = `${WELL_KNOWN}/verify`

const Audience = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(512))

export const MintRequest = Schema.Struct({
  audience: Audience,
  ttlSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: Identity.MAX_TTL_SECONDS })))
})

export const VerifyRequest = Schema.Struct({
  token: Schema.String.check(Schema.isMaxLength(8192)),
  audience: Schema.optionalKey(Audience)
})

/** Default life of a minted token, in seconds. */
export const DEFAULT_TTL_SECONDS = 300

const CORS = { "access-control-allow-origin": "*" }
const isTenantId = Schema.is(TenantId)

const runId = Effect.flatMap(param, (p) => decode(RunId, p["id"], "id"))

/**
 * The verdict on `token`. An unknown run, another tenant's, or one without an identity all answer
 * `unknown subject`, so the route tells nothing about which runs exist beyond what a valid token proves.
 */
const verdictOf = (request: typeof VerifyRequest.Type) =>
  Effect.gen(function*() {
    const peeked = Identity.peek(request.token)
    if (peeked === null) return { valid: false, reason: "malformed" }
    const subject = Identity.parseSubject(peeked.claims.sub)
    const unknown = { valid: false, reason: "unknown subject" }
    if (subject === null || !isTenantId(subject.tenant) || !isRunId(subject.runId)) return unknown
    const stored = yield* (yield* Runs).events(subject.tenant, subject.runId).pipe(
      Effect.catchTag("RunNotFound", () => Effect.succeed([]))
    )
    const started = stored.find((s) => s.event._tag === "RunStarted")?.event
    if (started?._tag !== "RunStarted" || started.identity === undefined) return unknown
    const verdict = Identity.verify(request.token, started.identity, yield* Clock.currentTimeMillis, request.audience)
    if (!verdict.valid) return { valid: false, reason: verdict.reason, message: verdict.message }
    return {
      valid: true,
      runId: subject.runId,
      tenant: subject.tenant,
      agent: started.agentName,
      claims: verdict.claims
    }
  })

export const identityRoutes = Layer.mergeAll(
  route(
    "POST",
    "/v1/runs/:id/identity-token",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        const request = yield* body(MintRequest)
        const run = yield* (yield* Runs).get(tenant, id)
        // only a run still going acts: a finished run has nothing left to present a token to
        if (run.status !== "running") return yield* new RunAlreadyFinished({ id, status: run.status })
        const minted = yield* (yield* Identity.Identities).mint(tenant, id, {
          audience: request.audience,
          ttlSeconds: request.ttlSeconds ?? DEFAULT_TTL_SECONDS
        })
        return json({ token: minted.token, expiresAt: minted.expiresAt })
      })
    )
  ),
  // public: whoever a run presents a token to checks it from anywhere, without a Lantern token
  HttpRouter.add(
    "GET",
    WELL_KNOWN,
    handled(Effect.succeed(json(
      {
        issuer: Identity.ISSUER,
        algorithm: Identity.ALGORITHM,
        tokenFormat: Identity.TOKEN_FORMAT,
        verify: VERIFY_PATH
      },
      200,
      { ...CORS, "cache-control": "public, max-age=300" }
    )))
  ),
  HttpRouter.add(
    "POST",
    VERIFY_PATH,
    handled(Effect.map(Effect.flatMap(body(VerifyRequest), verdictOf), (verdict) => json(verdict))).pipe(
      // a refused body gets CORS too, so a browser can read why
      Effect.map((response) => HttpServerResponse.setHeaders(response, CORS))
    )
  ),
  // the preflight a browser sends before a cross-origin JSON POST
  HttpRouter.add(
    "OPTIONS",
    VERIFY_PATH,
    Effect.succeed(HttpServerResponse.empty({
      status: 204,
      headers: {
        ...CORS,
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "86400"
      }
    }))
  )
)
