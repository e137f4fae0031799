// Bearer-token authentication for every /v1 route. Tokens are looked up by hash in Postgres and cached
// briefly in memory so the hot path does not query the database on every request.
import { Clock, Context, Effect, Layer } from "effect"
import { HttpServerRequest } from "effect/http"
import { Sql } from "../projections/Sql.ts"
import * as Tokens from "../projections/Tokens.ts"
import { type DatabaseUnavailable, Unauthorized } from "../schema/Errors.ts"

export type Principal = Tokens.Principal

/**
 * How long a looked-up token is trusted without asking the database again. A key revoked on this host stops
 * working at once (`forget`); on the other hosts of a deployment, within this time.
 */
export const CACHE_TTL_MS = 30_000
const CACHE_MAX = 10_000

export class Auth extends Context.Service<Auth, {
  /** The caller of the current request, or 401. */
  readonly principal: Effect.Effect<Principal, Unauthorized | DatabaseUnavailable, HttpServerRequest.HttpServerRequest>
  /** Drops a token (by its stored hash) from this host's cache: its next use asks the database. */
  readonly forget: (tokenHash: string) => Effect.Effect<void>
}>()("lantern/edge/Auth") {
  static readonly layer = Layer.effect(
    Auth,
    Effect.gen(function*() {
      const sql = yield* Sql
      const cache = new Map<string, { principal: Principal | null; until: number }>()
      const principal = Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const header = request.headers["authorization"]
        if (header === undefined || header === "") {
          return yield* new Unauthorized({
            reason: "missing Authorization header; send 'Authorization: Bearer <token>'"
          })
        }
        const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
        if (match === null)
          return yield* new Unauthorized({ reason: "the Authorization header must be 'Bearer <token>'" })
        const token = match[1]!
        const key = Tokens.hash(token)
        const now = yield* Clock.currentTimeMillis
        const cached = cache.get(key)
        let found: Principal | null
        if (cached !== undefined && cached.until > now) found = cached.principal
        else {
          found = yield* Tokens.authenticate(token).pipe(Effect.provideService(Sql, sql))
          if (cache.size >= CACHE_MAX) cache.clear()
          cache.set(key, { principal: found, until: now + CACHE_TTL_MS })
        }
        if (found === null) return yield* new Unauthorized({ reason: "invalid API token" })
        // a cached key still expires on time
        if (found.expiresAt !== null && found.expiresAt <= now)
          return yield* new Unauthorized({ reason: "the API key has expired" })
        return found
      })
      return Auth.of({ principal, forget: (tokenHash) => Effect.sync(() => void cache.delete(tokenHash)) })
    })
  )
}
