// Receipts over HTTP: a run's signed receipt and its journal export (exactly what the receipt's digest covers),
// the public keys at /.well-known/lantern-receipts and the verifier at /v1/receipts/verify (both without a token,
// from any origin), and key rotation.
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { SigningKeys } from "../actors/receipts/Keys.ts"
import { Receipts } from "../actors/receipts/Receipts.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import { badRequest } from "./Http.ts"
import { handlers } from "./Serve.ts"

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

export const receiptHandlers = handlers({
  runReceipt: ({ tenant, params: { id } }) => Receipts.use((r) => r.receipt(tenant, id)),
  runJournal: ({ tenant, params: { id } }) =>
    Effect.map(
      Receipts.use((r) => r.journal(tenant, id)),
      (lines) => HttpServerResponse.text(Verify.toJsonl(lines), { contentType: "application/x-ndjson" })
    ),
  // public, as the keys are: an auditor's browser or script verifies from anywhere, without a token
  verifyReceipt: ({ body }) =>
    Effect.gen(function*() {
      const journal = yield* journalOf(body.journal)
      return yield* publicVerdict(body.receipt, journal)
    }),
  receiptKeys: () => Effect.map(SigningKeys.use((k) => k.published), (keys) => ({ keys })),
  // deployment-wide: the scope `admin`, which only the operator tenant's keys hold (Scopes.ts)
  rotateSigningKey: () =>
    Effect.gen(function*() {
      const keys = yield* SigningKeys
      const current = yield* keys.rotate
      return { current, keys: yield* keys.published }
    })
})
