// Workloads over HTTP (actors/spawner/, ADR 0046): start one in a sandbox, read it, follow its output, stop it, and
// its receipt and journal export (ADR 0062).
import { Effect, Stream } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { Receipts } from "../actors/receipts/Receipts.ts"
import * as Verify from "../actors/receipts/Verify.ts"
import { Spawner } from "../actors/spawner/Spawner.ts"
import { Journal } from "../bus/Journal.ts"
import * as Sse from "../schema/Sse.ts"
import * as W from "../schema/Workload.ts"
import { lastFrameNext, sseComment, sseResponse, toEventResponse } from "./Events.ts"
import { BadRequest } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

const encoder = new TextEncoder()
const frame = (event: string, data: unknown, id?: string): Uint8Array =>
  encoder.encode(Sse.encode({ event, data: JSON.stringify(data), ...(id === undefined ? {} : { id }) }))

export const workloadHandlers = handlers({
  createWorkload: ({ tenant, principal, body }) =>
    Effect.gen(function*() {
      const { input, ...spec } = body
      const issues = W.problems(spec)
      if (issues.length > 0) return yield* new BadRequest({ issues })
      const view = yield* (yield* Spawner).start(tenant, spec, input ?? null, actorOf(principal))
      return reply(201, view)
    }),
  listWorkloads: ({ tenant }) => Effect.map(Spawner.use((s) => s.list(tenant)), (items) => ({ items })),
  getWorkload: ({ tenant, params: { id } }) => Spawner.use((s) => s.get(tenant, id)),
  workloadEvents: ({ tenant, params: { id } }) =>
    Effect.gen(function*() {
      yield* Spawner.use((s) => s.get(tenant, id))
      const stored = yield* (yield* Journal).read({ type: "workload", tenant, id })
      return { items: stored.map((s, i) => toEventResponse(s, i + 1)) }
    }),
  workloadLogs: ({ tenant, params: { id }, headers }) =>
    Effect.gen(function*() {
      const spawner = yield* Spawner
      const journal = yield* Journal
      yield* spawner.get(tenant, id)
      // Last-Event-ID is a position in the workload's journal (the ids of the output frames): resume after it
      const after = headers["last-event-id"] ?? 0
      const journaled = yield* journal.read({ type: "workload", tenant, id })
      const from = Math.min(after, journaled.length)
      const afterSeq = from === 0 ? 0 : journaled[from - 1]!.seq
      const output = spawner.follow(tenant, id, afterSeq).pipe(
        Stream.zipWithIndex,
        Stream.flatMap(([s, i]) =>
          s.event._tag === "WorkloadOutput"
            ? Stream.make(frame("output", { stream: s.event.stream, text: s.event.text }, String(from + i + 1)))
            : Stream.empty
        )
      )
      // the `end` frame is the stream's last: it leaves with the end of the response (ADR 0087)
      const last = lastFrameNext(yield* HttpServerRequest.HttpServerRequest)
      const end = Stream.fromEffect(spawner.get(tenant, id)).pipe(
        Stream.map((view) => {
          last()
          return frame("end", view)
        })
      )
      return sseResponse(sseComment("lantern workload logs"), Stream.concat(output, end))
    }),
  terminateWorkload: ({ tenant, principal, params: { id } }) =>
    Spawner.use((s) => s.terminate(tenant, id, actorOf(principal))),
  workloadReceipt: ({ tenant, params: { id } }) => Receipts.use((r) => r.workloadReceipt(tenant, id)),
  workloadJournal: ({ tenant, params: { id } }) =>
    Effect.map(
      Receipts.use((r) => r.workloadJournal(tenant, id)),
      (lines) => HttpServerResponse.text(Verify.toJsonl(lines), { contentType: "application/x-ndjson" })
    )
})
