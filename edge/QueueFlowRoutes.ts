// The queue workflow, snapshot and report routes (ADR 0056). A report answers Markdown when asked for it (Accept:
// text/markdown, or `markdown: true`), JSON with a `markdown` field otherwise.
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import { QueueFlows } from "../actors/queueflow/QueueFlows.ts"
import * as Templates from "../actors/queueflow/Templates.ts"
import type { Report } from "../schema/QueueFlow.ts"
import { BadRequest } from "./Http.ts"
import { handlers, reply } from "./Serve.ts"

const wantsMarkdown = (accept: string | undefined) =>
  accept !== undefined && accept.split(",").some((m) => m.trim().toLowerCase().startsWith("text/markdown"))

/**
 * The report, or its `markdown` field as the whole answer. The declaration lists the JSON answer (the document has one
 * body per status); the server passes a response a handler built as it is (edge/Serve.ts), hence the cast.
 */
const answer = (report: Report, markdown: boolean): Report =>
  markdown
    ? HttpServerResponse.text(report.markdown, { contentType: "text/markdown; charset=utf-8" }) as unknown as Report
    : report

export const queueFlowHandlers = handlers({
  createQueueWorkflow: ({ tenant, body }) => {
    const problems = Templates.requestProblems(body)
    if (problems.length > 0) return Effect.fail(new BadRequest({ issues: problems }))
    return Effect.map(
      QueueFlows.use((q) => q.create(tenant, body)),
      ({ workflow, created }) =>
        reply(created ? 201 : 200, workflow, { location: `/v1/queue-workflows/${workflow.id}` })
    )
  },
  listQueueWorkflows: ({ tenant, query }) =>
    Effect.map(QueueFlows.use((q) => q.list(tenant)), (all) => ({
      items: all.filter((f) =>
        (query.status === undefined || f.status === query.status) &&
        (query.template === undefined || f.template === query.template)
      )
    })),
  getQueueWorkflow: ({ tenant, params }) => QueueFlows.use((q) => q.get(tenant, params.id)),
  createSnapshot: ({ tenant, body }) =>
    Effect.map(
      QueueFlows.use((q) => q.takeSnapshot(tenant, body.label)),
      (s) => reply(201, s, { location: `/v1/snapshots/${s.id}` })
    ),
  getSnapshot: ({ tenant, params }) => QueueFlows.use((q) => q.getSnapshot(tenant, params.id)),
  latestReport: ({ tenant, headers }) =>
    Effect.map(QueueFlows.use((q) => q.report(tenant, null, null)), (r) => answer(r, wantsMarkdown(headers.accept))),
  createReport: ({ tenant, body, headers }) =>
    Effect.map(
      QueueFlows.use((q) => q.report(tenant, body.from, body.to ?? null)),
      (r) => answer(r, body.markdown === true || wantsMarkdown(headers.accept))
    )
})
