// Receipts: the signed statement of a run's or a workload's journal (its SHA-256 chain digest, extent, status and
// usage). A finished run's or workload's receipt is issued once and kept in the `lantern-receipts` bucket, so its
// issuedAt and keyId never change; a run still going gets a partial receipt signed on demand and not kept, a
// workload still going none (ADR 0062).
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { Journal, type ReadError } from "../../bus/Journal.ts"
import { Audit } from "../audit/Audit.ts"
import * as Kv from "../../bus/Kv.ts"
import { RECEIPTS_BUCKET } from "../../bus/Topology.ts"
import type { Stored } from "../../schema/Envelope.ts"
import { type BusUnavailable, RunNotFound } from "../../schema/Errors.ts"
import { TERMINAL_RUN_EVENTS } from "../../schema/Events.ts"
import { TERMINAL_WORKLOAD_EVENTS, WorkloadNotEnded, WorkloadNotFound } from "../../schema/Workload.ts"
import { sign, SigningKeys, type SigningKeyUnavailable } from "./Keys.ts"
import * as Verify from "./Verify.ts"

export type Error = RunNotFound | ReadError | SigningKeyUnavailable | BusUnavailable
export type WorkloadError = WorkloadNotFound | WorkloadNotEnded | ReadError | SigningKeyUnavailable | BusUnavailable

/** A run's journal as exported and hashed: position, stream sequence and stored envelope of each event. */
export const linesOf = (stored: ReadonlyArray<Stored>): ReadonlyArray<Verify.Line> =>
  stored.map((s, i) => ({ n: i + 1, seq: s.seq, envelope: s.envelope as unknown as Record<string, unknown> }))

const STATUS: Record<string, Verify.Unsigned["status"]> = {
  RunSucceeded: "succeeded",
  RunFailed: "failed",
  RunCanceled: "canceled"
}

/** Whether a journal has ended: its last event is a terminal one (a run's, or a workload's for `subject`). */
export const isFinal = (lines: ReadonlyArray<Verify.Line>, subject?: Verify.Subject) =>
  lines.length > 0 &&
  (subject === undefined ? TERMINAL_RUN_EVENTS : TERMINAL_WORKLOAD_EVENTS).has(
    String(lines[lines.length - 1]!.envelope["type"])
  )

/**
 * The receipt's fields for a journal (everything but the signature), as `keyId` would sign it at `issuedAt`; a
 * workload's when `subject` is "workload" (then `runId` is the workload's id).
 */
export const unsignedOf = (
  tenant: string,
  runId: string,
  lines: ReadonlyArray<Verify.Line>,
  keyId: string,
  issuedAt: string,
  subject?: Verify.Subject
): Verify.Unsigned => {
  const first = lines[0]!
  const last = lines[lines.length - 1]!
  const started = Verify.startOf(subject, first)
  const totals = Verify.totalsOf(lines, subject)
  const status = subject === undefined ? STATUS[String(last.envelope["type"])] : Verify.terminalStatusOf(subject, last)
  return {
    version: Verify.VERSION,
    ...(subject === undefined ? {} : { subject }),
    runId,
    tenantId: tenant,
    agent: started?.agent ?? "",
    agentVersionDigest: started?.digest ?? "",
    status: status ?? "running",
    partial: status === undefined,
    eventCount: lines.length,
    firstSeq: first.seq,
    lastSeq: last.seq,
    journalDigest: Verify.digest(lines),
    costUsd: totals.costUsd,
    tokensIn: totals.tokensIn,
    tokensOut: totals.tokensOut,
    issuedAt,
    keyId
  }
}

/** The `lantern-receipts` bucket: key `<tenant>.<runId>` (or `<workloadId>`), a finished one's receipt, written once. */
export const bucket = Kv.bucket({
  name: RECEIPTS_BUCKET,
  value: Schema.fromJsonString(Verify.Receipt),
  what: "a receipt"
})

export interface Service {
  /** The run's journal lines, exactly what a receipt's digest covers. */
  readonly journal: (
    tenant: string,
    runId: string
  ) => Effect.Effect<ReadonlyArray<Verify.Line>, RunNotFound | ReadError>
  /** The run's receipt: the stored one of a finished run (issued now if it has none yet), or a fresh partial one. */
  readonly receipt: (tenant: string, runId: string) => Effect.Effect<Verify.Receipt, Error>
  /**
   * Issues and stores a finished run's receipt if it has none; nothing for a run still going. `journal`: the run's
   * whole journal when the caller holds it (the driver that appended all of it), so it is not read back.
   */
  readonly issue: (
    tenant: string,
    runId: string,
    journal?: ReadonlyArray<Stored> | null
  ) => Effect.Effect<void, Error>
  /** The workload's journal lines, exactly what its receipt's digest covers. */
  readonly workloadJournal: (
    tenant: string,
    id: string
  ) => Effect.Effect<ReadonlyArray<Verify.Line>, WorkloadNotFound | ReadError>
  /** The receipt of a workload that has ended (issued now if it has none yet); 409 while it has not. */
  readonly workloadReceipt: (tenant: string, id: string) => Effect.Effect<Verify.Receipt, WorkloadError>
  /** Issues and stores an ended workload's receipt if it has none; nothing for a workload still going. */
  readonly issueWorkload: (tenant: string, id: string) => Effect.Effect<void, WorkloadError>
  /**
   * Checks a receipt of the caller's tenant: its signature under the published keys, and the digest recomputed from
   * the stored journal (and from `journal` too, when given).
   */
  readonly verify: (
    tenant: string,
    receipt: Verify.Receipt,
    journal: ReadonlyArray<Verify.Line> | null
  ) => Effect.Effect<Verify.Verdict, ReadError | SigningKeyUnavailable | BusUnavailable>
}

export class Receipts extends Context.Service<Receipts, Service>()("lantern/actors/receipts/Receipts") {
  static readonly layerWithoutKeys = Layer.effect(
    Receipts,
    Effect.gen(function*() {
      const journalStore = yield* Journal
      const keys = yield* SigningKeys
      const audit = yield* Audit
      const kv = yield* Kv.open(bucket)

      const journal: Service["journal"] = (tenant, runId) =>
        Effect.flatMap(
          journalStore.read({ type: "run", tenant, id: runId }),
          (stored) =>
            stored.length === 0 ? Effect.fail(new RunNotFound({ id: runId })) : Effect.succeed(linesOf(stored))
        )

      const workloadJournal: Service["workloadJournal"] = (tenant, id) =>
        Effect.flatMap(
          journalStore.read({ type: "workload", tenant, id }),
          (stored) => stored.length === 0 ? Effect.fail(new WorkloadNotFound({ id })) : Effect.succeed(linesOf(stored))
        )

      const kvKey = (tenant: string, runId: string) => `${tenant}.${runId}`

      // a stored receipt that does not decode is a bug or tampering: a defect, never a reason to sign another
      const stored = (tenant: string, runId: string) =>
        kv.get(kvKey(tenant, runId)).pipe(
          Effect.map((e) => Option.getOrNull(Option.map(e, (x) => x.value))),
          Effect.catchTag("CorruptValue", Effect.die)
        )

      const signNow = (
        tenant: string,
        runId: string,
        lines: ReadonlyArray<Verify.Line>,
        subject?: Verify.Subject
      ) =>
        Effect.gen(function*() {
          const key = yield* keys.current
          const issuedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
          return sign(key, unsignedOf(tenant, runId, lines, key.keyId, issuedAt, subject))
        })

      /**
       * The stored receipt of a finished run, issuing it first if needed (the first writer's receipt wins).
       * `lookFirst`: read the stored one before signing (a reader); the driver that just finished the run tries
       * to store its own at once instead, one request fewer, and reads only when another host was first.
       */
      const final = (
        tenant: string,
        runId: string,
        lines: ReadonlyArray<Verify.Line>,
        lookFirst = true,
        subject?: Verify.Subject
      ) =>
        Effect.gen(function*() {
          const existing = lookFirst ? yield* stored(tenant, runId) : null
          if (existing !== null) return existing
          const receipt = yield* signNow(tenant, runId, lines, subject)
          const created = yield* kv.create(kvKey(tenant, runId), receipt)
          if (created._tag === "Created") {
            // only the writer that stored it records the issuance: once per run, whichever host got there first
            yield* audit.record({
              tenant,
              action: "receipt.issued",
              actor: "system",
              target: runId,
              outcome: "allowed",
              detail: { keyId: receipt.keyId, status: receipt.status }
            })
            return receipt
          }
          const theirs = yield* stored(tenant, runId)
          return theirs ?? receipt
        })

      const receipt: Service["receipt"] = (tenant, runId) =>
        Effect.gen(function*() {
          const lines = yield* journal(tenant, runId)
          return isFinal(lines) ? yield* final(tenant, runId, lines) : yield* signNow(tenant, runId, lines)
        }).pipe(Effect.withSpan("Receipts.receipt", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } }))

      const issue: Service["issue"] = (tenant, runId, held) =>
        Effect.gen(function*() {
          const lines = held === undefined || held === null || held.length === 0
            ? yield* journal(tenant, runId)
            : linesOf(held)
          if (isFinal(lines)) yield* final(tenant, runId, lines, false)
        }).pipe(
          Effect.withSpan("Receipts.issue", { attributes: { "lantern.tenant": tenant, "lantern.run": runId } }, {
            captureStackTrace: false
          })
        )

      const workloadReceipt: Service["workloadReceipt"] = (tenant, id) =>
        Effect.gen(function*() {
          const lines = yield* workloadJournal(tenant, id)
          if (!isFinal(lines, "workload")) return yield* new WorkloadNotEnded({ id })
          return yield* final(tenant, id, lines, true, "workload")
        }).pipe(
          Effect.withSpan("Receipts.workloadReceipt", {
            attributes: { "lantern.tenant": tenant, "lantern.workload": id }
          })
        )

      const issueWorkload: Service["issueWorkload"] = (tenant, id) =>
        Effect.gen(function*() {
          const lines = yield* workloadJournal(tenant, id)
          if (isFinal(lines, "workload")) yield* final(tenant, id, lines, true, "workload")
        }).pipe(
          Effect.withSpan("Receipts.issueWorkload", {
            attributes: { "lantern.tenant": tenant, "lantern.workload": id }
          }, { captureStackTrace: false })
        )

      const verify: Service["verify"] = (tenant, receipt, given) =>
        Effect.gen(function*() {
          const published = yield* keys.published
          if (receipt.tenantId !== tenant) {
            // another tenant's journal is never read: the receipt can only be checked offline by its holder
            const verdict = Verify.verify(receipt, given ?? [], published)
            return {
              valid: false,
              checks: [...verdict.checks, {
                name: "stored-journal",
                ok: false,
                message: `the receipt is for tenant ${receipt.tenantId}, not the caller's`
              }]
            }
          }
          const none = () => Effect.succeed([] as ReadonlyArray<Verify.Line>)
          const storedLines = receipt.subject === "workload"
            ? yield* workloadJournal(tenant, receipt.runId).pipe(Effect.catchTag("WorkloadNotFound", none))
            : yield* journal(tenant, receipt.runId).pipe(Effect.catchTag("RunNotFound", none))
          // a partial receipt covers the journal as it was then: the events since are not part of it
          const covered = receipt.partial ? storedLines.slice(0, receipt.eventCount) : storedLines
          const verdict = Verify.verify(receipt, given ?? covered, published)
          if (given === null) return verdict
          // the journal sent with the receipt was checked; the stored one must agree with the receipt too
          const storedDigest = Verify.digest(storedLines.slice(0, receipt.eventCount))
          const agrees = storedLines.length >= receipt.eventCount && storedDigest === receipt.journalDigest
          const check: Verify.Check = {
            name: "stored-journal",
            ok: agrees,
            message: agrees
              ? `the stored journal's first ${receipt.eventCount} events hash to the receipt's digest`
              : storedLines.length === 0
              ? `${receipt.subject ?? "run"} ${receipt.runId} has no stored journal here`
              : `the stored journal's first ${receipt.eventCount} events hash to ${storedDigest}, not the receipt's digest`
          }
          return { valid: verdict.valid && agrees, checks: [...verdict.checks, check] }
        }).pipe(Effect.withSpan("Receipts.verify"))

      return Receipts.of({ journal, receipt, issue, workloadJournal, workloadReceipt, issueWorkload, verify })
    })
  )

  /** Receipts with the deployment's signing keys (both services). */
  static readonly layer = Receipts.layerWithoutKeys.pipe(Layer.provideMerge(SigningKeys.layer))
}
