// The `lantern agents`, `lantern runs` and `lantern doctor` commands (and the others' wiring): each decodes its flags (Input), calls the
// API (Client) and prints a summary (Format) or, with `--json`, the answer's body as it came.
import { Console, Effect, Option, Runtime, Schedule, Schema, Stream } from "effect"
import { Command } from "effect/cli"
import type { Api } from "../../schema/index.ts"
import * as Access from "./Access.ts"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import * as Doctor from "./Doctor.ts"
import * as Format from "./Format.ts"
import * as Input from "./Input.ts"
import * as Receipts from "./Receipts.ts"
import * as Test from "./Test.ts"
import * as Channels from "./Channels.ts"
import * as Sensors from "./Sensors.ts"
import * as Tasks from "./Tasks.ts"
import * as Workloads from "./Workloads.ts"
import * as Schedules from "./Schedules.ts"

const printReply = <A>(json: boolean, reply: Client.Reply<A>, human: (a: A) => string) =>
  Console.log(json ? JSON.stringify(reply.body, null, 2) : human(reply.value))

// ---- agents ----

const specFlags = { spec: Input.specJson, specFile: Input.specFile }

const agentsCreate = Command.make(
  "create",
  {
    name: Input.agentNameFlag("name", "The agent's name: lowercase letters, digits, '-' or '_'"),
    ...specFlags,
    description: Input.description,
    json: Input.json
  },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.createAgent, {
      body: {
        name: i.name,
        spec: Input.chosenSpec(i),
        ...Option.match(i.description, { onNone: () => ({}), onSome: (description) => ({ description }) })
      }
    })
    yield* printReply(i.json, reply, (a) => `created agent ${a.name} v${a.latestVersion}\n\n${Format.agent(a)}`)
  })
).pipe(
  Command.validate((i) => Input.exactlyOneSpec(i)),
  Command.withDescription("Create an agent from a spec (version 1)"),
  Command.withExamples([
    { command: "lantern agents create --name support --spec-file support.json", description: "From a file" },
    { command: "lantern agents create --name echo --spec '{\"systemPrompt\":\"Repeat the input.\"}'" }
  ])
)

const agentsList = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listAgents, {})
    yield* printReply(i.json, reply, (l) => Format.agentList(l.items))
  })
).pipe(Command.withDescription("List agents"), Command.withAlias("ls"))

const agentsGet = Command.make(
  "get",
  { name: Input.agentNameArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getAgent, { params: { name: i.name } })
    yield* printReply(i.json, reply, Format.agent)
  })
).pipe(Command.withDescription("Show an agent and its latest spec"))

const agentsUpdate = Command.make(
  "update",
  { name: Input.agentNameArgument, ...specFlags, description: Input.description, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.updateAgent, {
      params: { name: i.name },
      body: {
        spec: Input.chosenSpec(i),
        ...Option.match(i.description, { onNone: () => ({}), onSome: (description) => ({ description }) })
      }
    })
    yield* printReply(i.json, reply, (a) => `agent ${a.name} is now at v${a.latestVersion}\n\n${Format.agent(a)}`)
  })
).pipe(
  Command.validate((i) => Input.exactlyOneSpec(i)),
  Command.withDescription("Publish a new version of an agent's spec (runs already started keep theirs)")
)

const agentsVersions = Command.make(
  "versions",
  { name: Input.agentNameArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.agentVersions, { params: { name: i.name } })
    yield* printReply(i.json, reply, (l) => Format.agentVersions(l.items))
  })
).pipe(Command.withDescription("List the published versions of an agent"))

const agents = Command.make("agents").pipe(
  Command.withDescription("Create, inspect and version agents"),
  Command.withSubcommands([agentsCreate, agentsList, agentsGet, agentsUpdate, agentsVersions])
)

// ---- runs ----

/** `--follow` on a run that did not succeed: the run is printed already, this only sets the exit code. */
export class RunNotSucceeded extends Schema.TaggedError<RunNotSucceeded>()("RunNotSucceeded", {
  id: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `run ${this.id} ended ${this.status}`
  }
  override readonly [Runtime.errorReported] = false
}

/** The event stream ended before the run's last event, too often in a row to keep reconnecting. */
export class StreamEnded extends Schema.TaggedError<StreamEnded>()("StreamEnded", {
  id: Schema.String,
  lastSeq: Schema.Int
}) {
  override get message() {
    return `the event stream of ${this.id} kept closing before the run ended (last event #${this.lastSeq}); see \`lantern runs get ${this.id}\``
  }
}

const RECONNECTS = 5
const SETTLE_TIMEOUT = "10 seconds"

/**
 * The run as the API reports it once it has ended. The stream can show the last event a moment before the
 * run's row reflects it (projections are asynchronous), so a run still shown running is asked again briefly.
 */
const settledRun = (id: string) =>
  Client.call(endpoints.getRun, { params: { id: id } }).pipe(
    Effect.repeat({
      schedule: Schedule.spaced("200 millis"),
      until: (r) => Format.TERMINAL_STATUSES.has(r.value.status)
    }),
    Effect.timeoutOrElse({
      duration: SETTLE_TIMEOUT,
      orElse: () => Client.call(endpoints.getRun, { params: { id: id } })
    })
  )

/**
 * Prints a run's events as they happen until its last one, then the run. Reconnects (resuming after the last
 * event seen) when the stream drops before the end; prints each event once whatever the server replays.
 */
export const follow = (id: string, json: boolean) =>
  Effect.gen(function*() {
    let lastSeq = 0
    let done = false
    let connected = false
    let failures = 0
    while (!done) {
      const before = lastSeq
      const attempt = yield* Client.runStream(id, lastSeq).pipe(
        Stream.tap(() => Effect.sync(() => (connected = true))),
        // the server's ids are run positions (1…N); an older server sends none and resumes by sequence
        Stream.filter((e) => (e.position ?? e.seq) > lastSeq),
        Stream.takeUntil(Format.isTerminalEvent),
        Stream.runForEach((e) =>
          Console.log(json ? JSON.stringify(e) : Format.eventLine(e)).pipe(
            Effect.andThen(Effect.sync(() => {
              lastSeq = e.position ?? e.seq
              if (Format.isTerminalEvent(e)) done = true
            }))
          )
        ),
        Effect.result
      )
      if (done) break
      // Connection refused before the first event is the server's answer; after it, a dropped link is retried.
      if (attempt._tag === "Failure" && (attempt.failure._tag !== "Unreachable" || !connected)) {
        return yield* Effect.fail(attempt.failure)
      }
      failures = lastSeq > before ? 0 : failures + 1
      if (failures > RECONNECTS) {
        return yield* (attempt._tag === "Failure" ? Effect.fail(attempt.failure) : new StreamEnded({ id, lastSeq }))
      }
      yield* Effect.sleep(`${100 * 2 ** failures} millis`)
    }
    const run = yield* settledRun(id)
    yield* Console.log(json ? JSON.stringify(run.body) : `\n${Format.run(run.value)}`)
    if (run.value.status !== "succeeded") return yield* new RunNotSucceeded({ id, status: run.value.status })
  })

const runsCreate = Command.make(
  "create",
  {
    agent: Input.agentNameFlag("agent", "The agent to run"),
    input: Input.runInput,
    agentVersion: Input.agentVersion,
    idempotencyKey: Input.idempotencyKey,
    follow: Input.followFlag,
    json: Input.json
  },
  Effect.fn(function*(i) {
    const body: Api.CreateRunRequest = {
      agentName: i.agent,
      input: i.input,
      ...Option.match(i.agentVersion, { onNone: () => ({}), onSome: (agentVersion) => ({ agentVersion }) })
    }
    const reply = yield* Client.call(endpoints.createRun, { body, headers: Client.idempotencyKey(i.idempotencyKey) })
    if (!i.follow) return yield* printReply(i.json, reply, Format.run)
    const r = reply.value
    yield* Console.log(i.json ? JSON.stringify(reply.body) : `started ${r.id} (${r.agentName} v${r.agentVersion})`)
    yield* follow(r.id, i.json)
  })
).pipe(
  Command.withDescription(
    "Start a run. --input is parsed as JSON; text that is not valid JSON is sent as a JSON string " +
      "(--input hello sends \"hello\"; to send the string \"42\", write --input '\"42\"')"
  ),
  Command.withExamples([
    { command: "lantern runs create --agent support --input '{\"question\":\"Where is my order?\"}' --follow" },
    { command: "lantern runs create --agent echo --input hello --idempotency-key order-42" }
  ])
)

const runsGet = Command.make(
  "get",
  { id: Input.runIdArgument, json: Input.json },
  Effect.fn(function*(i) {
    yield* printReply(i.json, yield* Client.call(endpoints.getRun, { params: { id: i.id } }), Format.run)
  })
).pipe(Command.withDescription("Show a run: status, usage, output or error"))

const runsList = Command.make(
  "list",
  { status: Input.runStatus, agent: Input.agentFilter, limit: Input.limit, cursor: Input.cursor, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listRuns, {
      query: {
        status: Option.getOrUndefined(i.status),
        agentName: Option.getOrUndefined(i.agent),
        limit: Option.getOrUndefined(Option.map(i.limit, String)),
        cursor: Option.getOrUndefined(i.cursor)
      }
    })
    yield* printReply(i.json, reply, Format.runList)
  })
).pipe(Command.withDescription("List runs, newest first"), Command.withAlias("ls"))

const runsEvents = Command.make(
  "events",
  { id: Input.runIdArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.runEvents, { params: { id: i.id } })
    yield* printReply(
      i.json,
      reply,
      (l) => (l.items.length === 0 ? "no events" : l.items.map(Format.eventLine).join("\n"))
    )
  })
).pipe(Command.withDescription("Print a run's journal, one line per event"))

const runsFollow = Command.make(
  "follow",
  { id: Input.runIdArgument, json: Input.json },
  Effect.fn(function*(i) {
    yield* follow(i.id, i.json)
  })
).pipe(
  Command.withDescription(
    "Print a run's events live until it ends, then the run; exits 1 when the run failed or was canceled " +
      "(--json: one JSON object per line)"
  )
)

const runsCancel = Command.make(
  "cancel",
  { id: Input.runIdArgument, reason: Input.reason, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.cancelRun, {
      params: { id: i.id },
      body: Option.match(i.reason, { onNone: () => ({}), onSome: (reason) => ({ reason }) })
    })
    yield* printReply(i.json, reply, (r) => `cancel requested for ${r.id}\n\n${Format.run(r)}`)
  })
).pipe(Command.withDescription("Cancel a running run"))

const runsApprove = Command.make(
  "approve",
  {
    id: Input.runIdArgument,
    step: Input.stepIdArgument,
    by: Input.approver,
    reject: Input.reject,
    reason: Input.decisionReason,
    json: Input.json
  },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.approveStep, {
      params: { id: i.id, stepId: i.step },
      body: {
        approved: !i.reject,
        by: i.by,
        ...Option.match(i.reason, { onNone: () => ({}), onSome: (reason) => ({ reason }) })
      }
    })
    yield* printReply(
      i.json,
      reply,
      (r) => `${i.reject ? "rejected" : "approved"} ${i.step} of ${r.id}\n\n${Format.run(r)}`
    )
  })
).pipe(Command.withDescription("Approve (or --reject) a tool call waiting for a human decision"))

const runs = Command.make("runs").pipe(
  Command.withDescription("Start, inspect, follow, approve and cancel runs"),
  Command.withSubcommands([runsCreate, runsGet, runsList, runsEvents, runsFollow, runsApprove, runsCancel])
)

// ---- doctor ----

const doctor = Command.make(
  "doctor",
  { timeout: Input.doctorTimeout, json: Input.json },
  ({ json, timeout }) => Doctor.run({ json, runTimeoutSeconds: timeout })
).pipe(
  Command.withDescription(
    "Check the edge (/healthz), readiness (bus, database), the token, and one live run of the lantern-doctor agent"
  )
)

/** The CLI's commands, for the root `lantern` command to attach with `Command.withSubcommands`. */
export const subcommands = [
  agents.pipe(Command.provide(Client.Client.layerConfig)),
  runs.pipe(Command.provide(Client.Client.layerConfig)),
  doctor.pipe(Command.provide(Client.Client.layerConfig)),
  Receipts.receipts.pipe(Command.provide(Client.Client.layerConfig)),
  Receipts.keys.pipe(Command.provide(Client.Client.layerConfig)),
  Access.apiKeys.pipe(Command.provide(Client.Client.layerConfig)),
  Access.tenants.pipe(Command.provide(Client.Client.layerConfig)),
  Access.audit.pipe(Command.provide(Client.Client.layerConfig)),
  Workloads.run.pipe(Command.provide(Client.Client.layerConfig)),
  Workloads.workloads.pipe(Command.provide(Client.Client.layerConfig)),
  Channels.channels.pipe(Command.provide(Client.Client.layerConfig)),
  Channels.sessions.pipe(Command.provide(Client.Client.layerConfig)),
  Sensors.sensors.pipe(Command.provide(Client.Client.layerConfig)),
  Schedules.schedules.pipe(Command.provide(Client.Client.layerConfig)),
  Tasks.tasks.pipe(Command.provide(Client.Client.layerConfig)),
  Tasks.dispatch.pipe(Command.provide(Client.Client.layerConfig)),
  Test.test.pipe(Command.provide(Client.Client.layerConfig))
] as const
