// `lantern tasks add|list|get|cancel|retry` and `lantern dispatch pause|resume|status` (ADR 0054): the operator queue
// from a terminal. A task's body is assembled from flags and checked with the API's schema before anything is sent
// (a bad flag exits 2 naming it).
import { Console, Effect, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Issues } from "../../schema/index.ts"
import * as Task from "../../schema/Task.ts"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import { invalid, issueText, jsonFlag } from "./Flags.ts"
import * as Input from "./Input.ts"

type View = typeof Task.TaskView.Type

const decodeSubmission = Schema.decodeUnknownEffect(Task.TaskSubmission)

const text = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const number = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(description),
    Flag.withMetavar("N"),
    Flag.mapEffect((t) => {
      const n = Number(t)
      return t.trim() === "" || !Number.isFinite(n)
        ? Effect.fail(invalid(`--${name}`, "expected a number"))
        : Effect.succeed(n)
    }),
    Flag.optional
  )

const idArgument = Argument.String("id").pipe(
  Argument.withDescription("The task's id (tsk_…)"),
  Argument.withMetavar("ID"),
  Argument.mapEffect((id) =>
    /^tsk_[0-9a-z]{26}$/.test(id) ? Effect.succeed(id) : Effect.fail(invalid("ID", "expected a task id like tsk_01j…"))
  )
)

/** The flag each field of the body comes from, to name it in a refusal. */
const FLAG_OF: Readonly<Record<string, string>> = {
  kind: "--kind",
  source: "--source",
  payload: "--payload",
  subject: "--subject",
  description: "--description",
  priority: "--priority",
  agentName: "--agent",
  adapter: "--adapter",
  maxAttempts: "--max-attempts",
  availableAt: "--at",
  delayMinutes: "--delay-minutes",
  dedupeKey: "--dedupe-key"
}

export const summary = (t: View): string =>
  [
    `${t.id}  ${t.status}  p${t.priority}  ${t.kind}/${t.source}${t.subject === null ? "" : `  ${t.subject}`}`,
    `  attempts ${t.attemptsUsed}/${t.maxAttempts}${
      t.hintedReschedules > 0 ? ` (+${t.hintedReschedules} rate-limited)` : ""
    }, available ${t.availableAt}${t.startedAt === null ? "" : `, started ${t.startedAt}`}`,
    ...(t.reason === null ? [] : [`  reason: ${t.reason}`]),
    ...(t.outcome === null
      ? []
      : [`  outcome: ${t.outcome.status} (${t.outcome.machineStatus}) ${t.outcome.operatorSummary}`]),
    ...t.attempts.map((a) =>
      `  #${a.attempt} ${a.adapter ?? "-"} by ${a.worker}: ${a.closing ?? "running"}${
        a.reason === null ? "" : ` (${a.reason})`
      }`
    )
  ].join("\n")

const line = (t: View) => `${t.id}  ${t.status.padEnd(17)}  p${t.priority}  ${t.kind}/${t.source}`

const print = (json: boolean, body: unknown, text: string) => Console.log(json ? JSON.stringify(body, null, 2) : text)

const add = Command.make(
  "add",
  {
    kind: Flag.String("kind").pipe(Flag.withDescription("What the task is (picks its retry policy)")),
    source: Flag.String("source").pipe(Flag.withDescription("Where it comes from"), Flag.withDefault("cli")),
    payload: jsonFlag("payload", "The task's payload (JSON; null when absent)"),
    subject: text("subject", "A short title"),
    description: text("description", "What to do"),
    priority: number("priority", "0-9, higher first (5 when absent)"),
    agent: text("agent", "Run it with this agent (an agent adapter)"),
    adapter: jsonFlag("adapter", "An adapter or a fallback chain, as JSON ({\"type\":\"script\",\"command\":[…]})"),
    maxAttempts: number("max-attempts", "Attempts before it blocks (3 when absent)"),
    at: text("at", "Not before this instant (ISO 8601 with a zone)"),
    delayMinutes: number("delay-minutes", "Not before this many minutes from now"),
    dedupeKey: text("dedupe-key", "At most one task per key: a repeat answers the first"),
    json: Input.json
  },
  Effect.fn(function*(i) {
    const opt = <A>(o: Option.Option<A>, key: string) =>
      Option.match(o, { onNone: () => ({}), onSome: (v) => ({ [key]: v }) })
    const raw = {
      kind: i.kind,
      source: i.source,
      payload: Option.getOrNull(i.payload),
      ...opt(i.subject, "subject"),
      ...opt(i.description, "description"),
      ...opt(i.priority, "priority"),
      ...opt(i.agent, "agentName"),
      ...opt(i.adapter, "adapter"),
      ...opt(i.maxAttempts, "maxAttempts"),
      ...opt(i.at, "availableAt"),
      ...opt(i.delayMinutes, "delayMinutes"),
      ...opt(i.dedupeKey, "dedupeKey")
    }
    const body = yield* decodeSubmission(raw, { onExcessProperty: "error", errors: "all" }).pipe(
      Effect.mapError((e) => {
        const issues = Issues.toFieldIssues(e.issue)
        const first = issues[0]?.field.split(/[.[]/u)[0] ?? ""
        return invalid(FLAG_OF[first] ?? "task", issueText(e.issue))
      })
    )
    if (body.agentName === undefined && body.adapter === undefined) {
      return yield* invalid("--agent", "give --agent NAME or --adapter JSON")
    }
    if (body.availableAt !== undefined && body.delayMinutes !== undefined) {
      return yield* invalid("--delay-minutes", "give --at or --delay-minutes, not both")
    }
    const reply = yield* Client.call(endpoints.submitTask, { body })
    yield* print(
      i.json,
      reply.body,
      reply.value.duplicateOf === null ? reply.value.id : `${reply.value.id} (already queued with that dedupe key)`
    )
  })
).pipe(
  Command.withDescription("Queue a task for the workers"),
  Command.withExamples([
    { command: "lantern tasks add --kind triage --agent helper --payload '{\"issue\":42}'" },
    {
      command:
        "lantern tasks add --kind nightly --priority 9 --delay-minutes 30 --adapter '{\"type\":\"script\",\"command\":[\"./nightly.sh\"]}'"
    }
  ])
)

const status = Flag.Literals("status", Task.STATUSES).pipe(
  Flag.withDescription("Only tasks in this status"),
  Flag.optional
)

const list = Command.make(
  "list",
  {
    status,
    kind: text("kind", "Only tasks of this kind"),
    source: text("source", "Only tasks from this source"),
    json: Input.json
  },
  Effect.fn(function*(i) {
    const query = {
      ...Option.match(i.status, { onNone: () => ({}), onSome: (status) => ({ status }) }),
      ...Option.match(i.kind, { onNone: () => ({}), onSome: (kind) => ({ kind }) }),
      ...Option.match(i.source, { onNone: () => ({}), onSome: (source) => ({ source }) })
    }
    const reply = yield* Client.call(endpoints.listTasks, { query })
    yield* print(i.json, reply.body, reply.value.items.map(line).join("\n"))
  })
).pipe(Command.withDescription("List the tenant's tasks, newest first"), Command.withAlias("ls"))

const get = Command.make(
  "get",
  { id: idArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getTask, { params: { id: i.id } })
    yield* print(i.json, reply.body, summary(reply.value))
  })
).pipe(Command.withDescription("Show a task: status, attempts and how each closed, outcome"))

const cancel = Command.make(
  "cancel",
  { id: idArgument, reason: text("reason", "Why (kept with the task)"), json: Input.json },
  Effect.fn(function*(i) {
    const body = Option.match(i.reason, { onNone: () => ({}), onSome: (reason) => ({ reason }) })
    const reply = yield* Client.call(endpoints.cancelTask, { params: { id: i.id }, body })
    yield* print(i.json, reply.body, summary(reply.value))
  })
).pipe(Command.withDescription("Cancel a pending, retrying, blocked or running task (a running one is interrupted)"))

const retry = Command.make(
  "retry",
  {
    id: idArgument,
    extraAttempts: number("extra-attempts", "More attempts when its attempts are spent (1 when absent)"),
    requeue: Flag.Boolean("requeue").pipe(
      Flag.withDescription("Start it afresh instead: attempts counted from zero"),
      Flag.withDefault(false)
    ),
    json: Input.json
  },
  Effect.fn(function*(i) {
    if (i.requeue && Option.isSome(i.extraAttempts)) {
      return yield* invalid("--extra-attempts", "a requeue starts afresh: give --requeue or --extra-attempts")
    }
    const extra = Option.getOrUndefined(i.extraAttempts)
    if (extra !== undefined && (!Number.isInteger(extra) || extra < 1 || extra > 100)) {
      return yield* invalid("--extra-attempts", "expected a whole number from 1 to 100")
    }
    const reply = i.requeue
      ? yield* Client.call(endpoints.requeueTask, { params: { id: i.id } })
      : yield* Client.call(endpoints.retryTask, {
        params: { id: i.id },
        body: extra === undefined ? {} : { extraAttempts: extra }
      })
    yield* print(i.json, reply.body, summary(reply.value))
  })
).pipe(Command.withDescription("Try a blocked, failed, canceled or retrying task again now (or --requeue it afresh)"))

export const tasks = Command.make("tasks").pipe(
  Command.withDescription("Queue, list, inspect, cancel and retry tasks"),
  Command.withSubcommands([add, list, get, cancel, retry])
)

// ---- dispatch ----

const dispatchText = (d: typeof Task.DispatchView.Type) =>
  [
    `dispatch ${d.paused ? `paused${d.reason === null ? "" : ` (${d.reason})`}` : "running"}${
      d.changedBy === null ? "" : ` since ${d.changedAt} by ${d.changedBy}`
    }`,
    `queue: ${
      Object.entries(d.depth).filter(([, n]) => n > 0).sort(([a], [b]) => Number(b) - Number(a)).map(([p, n]) =>
        `p${p}: ${n}`
      ).join(", ") || "empty"
    }; delayed ${d.delayed}, running ${d.running}, blocked ${d.blocked}`,
    ...d.workers.map((w) => `  ${w.id} (${w.host}): ${w.taskId === null ? "idle" : `${w.taskId} since ${w.since}`}`)
  ].join("\n")

const pause = Command.make(
  "pause",
  { reason: text("reason", "Why (shown with the dispatch state, audited)"), json: Input.json },
  Effect.fn(function*(i) {
    const body = { paused: true, ...Option.match(i.reason, { onNone: () => ({}), onSome: (reason) => ({ reason }) }) }
    const reply = yield* Client.call(endpoints.setDispatch, { body })
    yield* print(i.json, reply.body, dispatchText(reply.value))
  })
).pipe(Command.withDescription("Stop every worker claiming the tenant's tasks (running ones finish)"))

const resume = Command.make(
  "resume",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.setDispatch, { body: { paused: false } })
    yield* print(i.json, reply.body, dispatchText(reply.value))
  })
).pipe(Command.withDescription("Let workers claim the tenant's tasks again"))

const dispatchStatus = Command.make(
  "status",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getDispatch, {})
    yield* print(i.json, reply.body, dispatchText(reply.value))
  })
).pipe(Command.withDescription("Paused or not, the queue's depth per priority, and every worker with what it runs"))

export const dispatch = Command.make("dispatch").pipe(
  Command.withDescription("Pause, resume and inspect the queue's dispatch"),
  Command.withSubcommands([pause, resume, dispatchStatus])
)
