// Receipts over HTTP: a run's signed receipt and its journal export (exactly what the receipt's digest covers),
// the public keys at /.well-known/lantern-receipts and the verifier at /v1/receipts/verify (both without a token,
// from any origin), and key rotation.
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SigningKeys } from "../actors/receipts/Keys.ts"
import { Receipts } from "../actors/receipts/Receipts.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import { RunId } from "../schema/Ids.ts"
import { badRequest, body, decode, handled, json } from "./Http.ts"
import { authed, param, route } from "./Routes.ts"

export const WELL_KNOWN = "/.well-known/lantern-receipts"
export const VERIFY_PATH = "/v1/receipts/verify"

const CORS = { "access-control-allow-origin": "*" }

const runId = Effect.flatMap(param, (p) => decode(RunId, p["id"], "id"))

/** `{receipt}` or `{receipt, journal}`: the journal as the JSONL export's text, or as an array of its lines. */
export const VerifyRequest = Schema.Struct({
  receipt: Verify.Receipt,
  journal: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.Unknown)]))
})

const journalOf = (journal: string | ReadonlyArray<unknown> | undefined) =>
  Effect.try({
    try: () =>
      journal === undefined
        ? null
        : typeof journal === "string"
        ? Verify.parseJsonl(journal)
        : Verify.parseLines(journal),
    catch: (e) => badRequest("journal", e instanceof Error ? e.message : String(e))
  })

/**
 * The verdict on a receipt for anyone holding it. The signature is checked first, under the published keys: only a
 * receipt Lantern signed (whose holder already knows its run, tenant, counts and digest) has its run's stored
 * journal read and compared, in the receipt's own tenant. Any other receipt is checked against the journal sent
 * with it alone, so a forged one learns nothing about which runs exist or what they hold.
 */
const publicVerdict = (receipt: Verify.Receipt, journal: ReadonlyArray<Verify.Line> | null) =>
  Effect.gen(function*() {
    const published = yield* (yield* SigningKeys).published
    const offline = Verify.verify(receipt, journal ?? [], published)
    if (offline.checks.find((c) => c.name === "signature")?.ok === true)
      return yield* (yield* Receipts).verify(receipt.tenantId, receipt, journal)
    const unread: Verify.Check = {
      name: "stored-journal",
      ok: false,
      message: "not read: the receipt's signature does not verify under the published keys"
    }
    return { valid: false, checks: [...offline.checks, unread] } satisfies Verify.Verdict
  })

export const receiptRoutes = Layer.mergeAll(
  route(
    "GET",
    "/v1/runs/:id/receipt",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        return json(yield* (yield* Receipts).receipt(tenant, id))
      })
    )
  ),
  route(
    "GET",
    "/v1/runs/:id/journal",
    authed((tenant) =>
      Effect.gen(function*() {
        const id = yield* runId
        const lines = yield* (yield* Receipts).journal(tenant, id)
        return HttpServerResponse.text(Verify.toJsonl(lines), { contentType: "application/x-ndjson" })
      })
    )
  ),
  // public, as the keys are: an auditor's browser or script verifies from anywhere, without a token
  HttpRouter.add(
    "POST",
    VERIFY_PATH,
    handled(Effect.gen(function*() {
      const request = yield* body(VerifyRequest)
      const journal = yield* journalOf(request.journal)
      return json(yield* publicVerdict(request.receipt, journal))
    })).pipe(
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
  ),
  // deployment-wide: the scope `admin`, which only the operator tenant's keys hold (Scopes.ts)
  route(
    "POST",
    "/v1/admin/signing-keys/rotate",
    authed(() =>
      Effect.gen(function*() {
        const keys = yield* SigningKeys
        const current = yield* keys.rotate
        return json({ current, keys: yield* keys.published })
      })
    )
  ),
  // public: an auditor's browser or script fetches it from anywhere, without a token
  HttpRouter.add(
    "GET",
    WELL_KNOWN,
    handled(Effect.gen(function*() {
      const keys = yield* (yield* SigningKeys).published
      return json({ keys }, 200, { ...CORS, "cache-control": "public, max-age=60" })
    }))
  )
)
