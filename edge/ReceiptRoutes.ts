// Receipts over HTTP: a run's signed receipt and its journal export (exactly what the receipt's digest covers),
// the public keys at /.well-known/lantern-receipts (no token, any origin), server-side verification, and key rotation.
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SigningKeys } from "../actors/receipts/Keys.ts"
import { Receipts } from "../actors/receipts/Receipts.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import { RunId } from "../schema/Ids.ts"
import { badRequest, body, decode, handled, json } from "./Http.ts"
import { authed, param, route } from "./Routes.ts"

export const WELL_KNOWN = "/.well-known/lantern-receipts"

const runId = Effect.flatMap(param, (p) => decode(RunId, p["id"], "id"))

/** `{receipt}` or `{receipt, journal}`: the journal as the JSONL export's text, or as an array of its lines. */
export const VerifyRequest = Schema.Struct({
  receipt: Verify.Receipt,
  journal: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.Unknown)]))
})

const journalOf = (journal: string | ReadonlyArray<unknown> | undefined) =>
  Effect.try({
    try: () => journal === undefined ? null : typeof journal === "string" ? Verify.parseJsonl(journal) : Verify.parseLines(journal),
    catch: (e) => badRequest("journal", e instanceof Error ? e.message : String(e))
  })

export const receiptRoutes = Layer.mergeAll(
  route("GET", "/v1/runs/:id/receipt", authed((tenant) =>
    Effect.gen(function*() {
      const id = yield* runId
      return json(yield* (yield* Receipts).receipt(tenant, id))
    }))),
  route("GET", "/v1/runs/:id/journal", authed((tenant) =>
    Effect.gen(function*() {
      const id = yield* runId
      const lines = yield* (yield* Receipts).journal(tenant, id)
      return HttpServerResponse.text(Verify.toJsonl(lines), { contentType: "application/x-ndjson" })
    }))),
  route("POST", "/v1/receipts/verify", authed((tenant) =>
    Effect.gen(function*() {
      const request = yield* body(VerifyRequest)
      const journal = yield* journalOf(request.journal)
      return json(yield* (yield* Receipts).verify(tenant, request.receipt, journal))
    }))),
  // deployment-wide: the scope `admin`, which only the operator tenant's keys hold (Scopes.ts)
  route("POST", "/v1/admin/signing-keys/rotate", authed(() =>
    Effect.gen(function*() {
      const keys = yield* SigningKeys
      const current = yield* keys.rotate
      return json({ current, keys: yield* keys.published })
    }))),
  // public: an auditor's browser or script fetches it from anywhere, without a token
  HttpRouter.add("GET", WELL_KNOWN, handled(Effect.gen(function*() {
    const keys = yield* (yield* SigningKeys).published
    return json({ keys }, 200, { "access-control-allow-origin": "*", "cache-control": "public, max-age=60" })
  })))
)
