// `lantern run agent.yaml` and `lantern workloads list|get|logs|terminate|receipt|journal` (ADR 0046, 0062): a workload spec read from a
// YAML or JSON file, checked with the API's schema before anything is sent (exit 2 naming the field), started, and
// its output followed until it ends (exit 1 unless it exited 0).
import { Console, Effect, Option, Runtime, Schema, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as W from "../../schema/Workload.ts"
import { CreateWorkloadRequest, endpoints, WorkloadView } from "../Api.ts"
import * as Endpoint from "../Endpoint.ts"
import * as Client from "./Client.ts"
import { decodeStrict, invalid, readYamlFile } from "./Flags.ts"
import * as Input from "./Input.ts"

type View = typeof WorkloadView.Type

/** FILE: a workload spec (YAML or JSON), decoded strictly, with the API's own checks after the schema's. */
const specFile = Argument.String("file").pipe(
  Argument.withDescription("The workload spec: YAML or JSON (apiVersion lantern.dev/v1, kind AgentSpec)"),
  Argument.withMetavar("FILE"),
  Argument.mapEffect((path) =>
    Effect.gen(function*() {
      const value = yield* readYamlFile("FILE", path)
      const spec = yield* decodeStrict(W.WorkloadSpec, "FILE", value, `${path}: not a workload spec: `)
      const problems = W.problems(spec)
      if (problems.length > 0) {
        return yield* invalid("FILE", `${path}: ${problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`)
      }
      return spec
    })
  )
)

const input = Flag.String("input").pipe(
  Flag.withDescription("Text given to the workload as LANTERN_INPUT"),
  Flag.withMetavar("TEXT"),
  Flag.mapEffect((t) =>
    t.length > 65_536 ? Effect.fail(invalid("--input", "at most 65536 characters")) : Effect.succeed(t)
  ),
  Flag.optional
)

const follow = Flag.Boolean("follow").pipe(
  Flag.withDescription("Print the workload's output live until it ends (exit 1 unless it exited 0)"),
  Flag.withDefault(false)
)

const idArgument = Argument.String("id").pipe(
  Argument.withDescription("The workload's id (wl_…)"),
  Argument.withMetavar("ID"),
  Argument.mapEffect((id) =>
    /^wl_[0-9a-z]{26}$/.test(id)
      ? Effect.succeed(id)
      : Effect.fail(invalid("ID", "expected a workload id like wl_01j…"))
  )
)

export const summary = (w: View): string =>
  [
    `${w.id}  ${w.name}  ${w.state}${w.exitCode === null ? "" : ` (exit ${w.exitCode})`}`,
    `  isolation ${w.isolation} on ${w.backend ?? "-"}${w.host === null ? "" : `, host ${w.host}`}`,
    ...(w.reason === null ? [] : [`  reason: ${w.reason}`]),
    ...(w.usage === null
      ? []
      : [
        `  wall ${Math.round(w.usage.wallMs)} ms, cpu ${Math.round(w.usage.cpuMs)} ms${
          w.usage.peakRssKb === null ? "" : `, peak rss ${Math.round(w.usage.peakRssKb / 1024)} MiB`
        }`
      ]),
    ...(w.enforced.length === 0 ? [] : [`  enforced: ${w.enforced.join(", ")}`]),
    ...(w.secretsVended.length === 0 ? [] : [`  secrets vended: ${w.secretsVended.join(", ")}`]),
    ...w.egress.map((e) => `  egress ${e.allowed ? "allowed" : "refused"} ${e.host}:${e.port} (${e.detail})`)
  ].join("\n")

/** The workload did not exit 0: it is printed already, this only sets the exit code. */
export class WorkloadNotOk extends Schema.TaggedError<WorkloadNotOk>()("WorkloadNotOk", {
  id: Schema.String,
  state: Schema.String
}) {
  override get message() {
    return `workload ${this.id} ended ${this.state}`
  }
  override readonly [Runtime.errorReported] = false
}

const decodeView = Schema.decodeUnknownEffect(Schema.fromJsonString(WorkloadView))

/** Prints the workload's output as it comes (stdout to stdout, stderr to stderr) until its `end` frame. */
const followLogs = (id: string, json: boolean) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    let last: string | null = null
    let end: View | null = null
    for (let attempt = 0; end === null && attempt < 6; attempt++) {
      yield* client.sse(Endpoint.pathOf(endpoints.workloadLogs.path, { id }), last).pipe(
        Stream.takeUntil((m) => m.event === "end"),
        Stream.runForEach((m) =>
          Effect.gen(function*() {
            if (m.id !== null) last = m.id
            if (m.event === "output") {
              const o = JSON.parse(m.data) as { stream: "stdout" | "stderr"; text: string }
              if (json) yield* Console.log(JSON.stringify(o))
              else yield* Effect.sync(() => (o.stream === "stdout" ? process.stdout : process.stderr).write(o.text))
            } else if (m.event === "end") end = yield* decodeView(m.data).pipe(Effect.orDie)
          })
        ),
        Effect.catchTag("Unreachable", (e) => attempt < 5 ? Effect.sleep("500 millis") : Effect.fail(e))
      )
    }
    const view: View = end ?? (yield* Client.call(endpoints.getWorkload, { params: { id } })).value
    yield* json ? Console.log(JSON.stringify(view)) : Console.error(`\n${summary(view)}`)
    if (view.state !== "exited" || view.exitCode !== 0) return yield* new WorkloadNotOk({ id, state: view.state })
  })

export const run = Command.make(
  "run",
  { file: specFile, input, follow, json: Input.json },
  Effect.fn(function*(i) {
    const body: typeof CreateWorkloadRequest.Encoded = {
      ...i.file,
      ...Option.match(i.input, { onNone: () => ({}), onSome: (input) => ({ input }) })
    }
    const reply = yield* Client.call(endpoints.createWorkload, { body })
    if (i.json && !i.follow) return yield* Console.log(JSON.stringify(reply.body, null, 2))
    yield* i.json ? Effect.void : Console.log(reply.value.id)
    if (i.follow) yield* followLogs(reply.value.id, i.json)
  })
).pipe(
  Command.withDescription("Start a workload from a spec file (YAML or JSON) in the sandbox its isolation tier needs"),
  Command.withExamples([
    { command: "lantern run agent.yaml --follow", description: "Start it and print its output until it ends" },
    { command: "lantern run agent.yaml --input 'summarise this'" }
  ])
)

const list = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listWorkloads, {})
    yield* Console.log(
      i.json
        ? JSON.stringify(reply.body, null, 2)
        : reply.value.items.map((w) => `${w.id}  ${w.name}  ${w.state}  ${w.isolation}/${w.backend ?? "-"}`).join("\n")
    )
  })
).pipe(Command.withDescription("List workloads, newest first"), Command.withAlias("ls"))

const get = Command.make(
  "get",
  { id: idArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getWorkload, { params: { id: i.id } })
    yield* Console.log(i.json ? JSON.stringify(reply.body, null, 2) : summary(reply.value))
  })
).pipe(Command.withDescription("Show a workload: state, backend, exit code, usage, egress decisions"))

const logs = Command.make(
  "logs",
  { id: idArgument, json: Input.json },
  (i) => followLogs(i.id, i.json)
).pipe(Command.withDescription("Print a workload's output from the start, following it until it ends"))

const terminate = Command.make(
  "terminate",
  { id: idArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.terminateWorkload, { params: { id: i.id } })
    yield* Console.log(i.json ? JSON.stringify(reply.body, null, 2) : summary(reply.value))
  })
).pipe(Command.withDescription("Stop a running workload"))

const receipt = Command.make(
  "receipt",
  { id: idArgument },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.workloadReceipt, { params: { id: i.id } })
    yield* Console.log(JSON.stringify(reply.body, null, 2))
  })
).pipe(
  Command.withDescription(
    "Print an ended workload's signed receipt (JSON); verify it with `lantern receipts verify` and its journal"
  ),
  Command.withExamples([{
    command:
      "lantern workloads receipt wl_… > receipt.json && lantern workloads journal wl_… > journal.jsonl && lantern receipts verify receipt.json journal.jsonl",
    description: "Fetch both and verify offline"
  }])
)

const journal = Command.make(
  "journal",
  { id: idArgument },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.workloadJournal, { params: { id: i.id } })
    yield* Effect.sync(() => process.stdout.write(reply.value))
  })
).pipe(Command.withDescription("Print a workload's journal export (JSONL): exactly what its receipt's digest covers"))

export const workloads = Command.make("workloads").pipe(
  Command.withDescription("List, inspect, follow and stop sandboxed workloads; their receipts and journals"),
  Command.withSubcommands([list, get, logs, terminate, receipt, journal])
)
