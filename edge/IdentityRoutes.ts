// Run identity over HTTP: a running run's token for an audience (`/v1`), and the public verifier at
// /.well-known/lantern-agent-identity (no token, any origin) that checks a token against the run's journaled key.
import { Clock, Effect, Schema } from "effect"
import * as Identity from "../actors/identity/Identity.ts"
import { Runs } from "../actors/run/Runs.ts"
import { RunAlreadyFinished } from "../schema/Errors.ts"
import { isRunId, TenantId } from "../schema/Ids.ts"
import { endpoints, type IdentityVerifyRequest } from "./Api.ts"
import { handlers } from "./Serve.ts"

export const WELL_KNOWN = "/.well-known/lantern-agent-identity"
export const VERIFY_PATH = `${WELL_KNOWN}/verify`

/** Default life of a minted token, in seconds. */
export const DEFAULT_TTL_SECONDS = 300

const isTenantId = Schema.is(TenantId)

/**
 * The verdict on `token`. An unknown run, another tenant's, or one without an identity all answer
 * `unknown subject`, so the route tells nothing about which runs exist beyond what a valid token proves.
 */
const verdictOf = (request: typeof IdentityVerifyRequest.Type) =>
  Effect.gen(function*() {
    const peeked = Identity.peek(request.token)
    if (peeked === null) return { valid: false, reason: "malformed" } as const
    const subject = Identity.parseSubject(peeked.claims.sub)
    const unknown = { valid: false, reason: "unknown subject" } as const
    if (subject === null || !isTenantId(subject.tenant) || !isRunId(subject.runId)) return unknown
    const stored = yield* (yield* Runs).events(subject.tenant, subject.runId).pipe(
      Effect.catchTag("RunNotFound", () => Effect.succeed([]))
    )
    const started = stored.find((s) => s.event._tag === "RunStarted")?.event
    if (started?._tag !== "RunStarted" || started.identity === undefined) return unknown
    const verdict = yield* Identity.check(
      request.token,
      started.identity,
      yield* Clock.currentTimeMillis,
      request.audience
    )
    if (!verdict.valid) return { valid: false, reason: verdict.reason, message: verdict.message }
    return {
      valid: true,
      runId: subject.runId,
      tenant: subject.tenant,
      agent: started.agentName,
      claims: verdict.claims
    }
  })

export const identityHandlers = handlers({
  mintIdentityToken: ({ tenant, params: { id }, body }) =>
    Effect.gen(function*() {
      const run = yield* (yield* Runs).get(tenant, id)
      // only a run still going acts: a finished run has nothing left to present a token to
      if (run.status !== "running") return yield* new RunAlreadyFinished({ id, status: run.status })
      const minted = yield* (yield* Identity.Identities).mint(tenant, id, {
        audience: body.audience,
        ttlSeconds: body.ttlSeconds ?? DEFAULT_TTL_SECONDS
      })
      return { token: minted.token, expiresAt: minted.expiresAt }
    }),
  // public: whoever a run presents a token to checks it from anywhere, without a Lantern token
  identityIssuer: () =>
    Effect.succeed({
      issuer: Identity.ISSUER,
      algorithm: Identity.ALGORITHM,
      tokenFormat: Identity.TOKEN_FORMAT,
      verify: endpoints.verifyIdentityToken.path
    }),
  verifyIdentityToken: ({ body }) => verdictOf(body)
})
