// What every recording scenario of scripts/record-journals.ts shares: driving `lantern serve` over HTTP, the
// journal subjects of the tenant it bootstraps, and copying an actor's stored messages byte for byte out of JetStream.
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { streamOf } from "../../bus/Topology.ts"
import * as Replay from "../../tests/support/Replay.ts"
import { api, eventually } from "../../tests/support/Stack.ts"

/** The tenant `lantern serve` bootstraps. */
export const TENANT = "dev"

export type Call = ReturnType<typeof api>

/** One journal to write: its fixture name and subject. */
export interface Recording {
  readonly name: string
  readonly subject: string
  /** Keep only the messages up to and including the first one this returns true for (a crash-shaped journal). */
  readonly truncateAfter?: (line: Replay.Line) => boolean
}

export const runSubject = (runId: string) => `lantern.run.${TENANT}.${runId}`
export const agentSubject = (name: string) => `lantern.agent.${TENANT}.${name}`
/** An agent's budget journal, or the tenant's (`_tenant`). */
export const budgetSubject = (id: string) => `lantern.budget.${TENANT}.${id}`

export const must = async (call: Call, method: string, path: string, status: number, body?: unknown) => {
  const r = await call(method, path, body)
  if (r.status !== status) throw new Error(`${method} ${path}: expected ${status}, got ${r.status}: ${r.text}`)
  return r.json
}

export const startRun = async (call: Call, agentName: string, input: unknown): Promise<string> =>
  (await must(call, "POST", "/v1/runs", 201, { agentName, input })).id

export const waitStatus = (call: Call, runId: string, status: string) =>
  eventually(
    async () => {
      const r = await call("GET", `/v1/runs/${runId}`)
      if (r.json?.status !== "running" && r.json?.status !== status)
        throw new Error(
          `run ${runId} ended ${r.json?.status}: ${r.text}`
        )
      return r.json?.status === status
    },
    30_000,
    `run ${runId} to be ${status}`
  )

export type Event = { readonly type: string; readonly payload: Record<string, any> }

export const eventsOf = async (call: Call, runId: string): Promise<ReadonlyArray<Event>> =>
  (await must(call, "GET", `/v1/runs/${runId}/events`, 200)).items

/** Waits until the run has journaled a StepStarted for `stepId`; returns that event. */
export const stepStarted = (call: Call, runId: string, stepId: string) =>
  eventually(
    async () => (await eventsOf(call, runId)).find((e) => e.type === "StepStarted" && e.payload.stepId === stepId),
    30_000,
    `${stepId} of ${runId} to start`
  )

/** Every message stored on `subject`, in stream order, each as the exact JSON it was stored as. */
export const readRaw = async (natsUrl: string, subject: string): Promise<ReadonlyArray<Replay.Line>> => {
  const stream = streamOf[Replay.actorTypeOf(subject)]
  const nc = await connect({ servers: natsUrl, name: "record-journals" })
  try {
    const js = jetstream(nc)
    const jsm = await jetstreamManager(nc)
    const last = await jsm.direct.getMessage(stream, { last_by_subj: subject })
    if (last === null) throw new Error(`no messages on ${subject}`)
    const consumer = await js.consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All })
    const out: Array<Replay.Line> = []
    while (out.length === 0 || out[out.length - 1]!.seq < last.seq) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 5000 })
      let got = 0
      for await (const m of batch) {
        got++
        const data = m.string()
        const parsed: unknown = JSON.parse(data)
        // the fixture embeds the envelope as JSON: only sound when re-serialising gives back the stored bytes
        if (JSON.stringify(parsed) !== data) throw new Error(`${subject} #${m.seq} does not round-trip through JSON`)
        out.push({ seq: m.seq, subject: m.subject, data: parsed })
        if (m.seq >= last.seq) break
      }
      if (got === 0) throw new Error(`${subject} ended before sequence ${last.seq}`)
    }
    await consumer.delete().catch(() => undefined)
    return out
  } finally {
    await nc.close()
  }
}
