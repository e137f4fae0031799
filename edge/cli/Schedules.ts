// `lantern schedules list|get|add|fire|delete` (ADR 0055): schedules of agent runs or queue tasks. A definition is
// checked here as the API checks it (exactly one of --cron and --every, a cron expression croner reads, an IANA time
// zone, a task file that is a task) before anything is sent: bad usage exits 2 naming the option.
import { Console, Effect, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Slots from "../../actors/schedule/Slots.ts"
import * as S from "../../schema/Schedule.ts"
import { TaskSubmission } from "../../schema/Task.ts"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import { decodeStrict, invalid, readYamlFile } from "./Flags.ts"
import * as Input from "./Input.ts"

const isScheduleId = Schema.is(S.ScheduleId)

const idArgument = Argument.String("id").pipe(
  Argument.withDescription("The schedule's id (sch_…)"),
  Argument.withMetavar("ID"),
  Argument.mapEffect((id) =>
    isScheduleId(id) ? Effect.succeed(id) : Effect.fail(invalid("ID", "expected a schedule id like sch_01j…"))
  )
)

const nameArgument = Argument.String("name").pipe(
  Argument.withDescription("The schedule's name"),
  Argument.withMetavar("NAME"),
  Argument.mapEffect((name) =>
    Schema.is(S.ScheduleName)(name)
      ? Effect.succeed(name)
      : Effect.fail(invalid("NAME", "1-200 printable ASCII characters, not starting with a space"))
  )
)

const agent = Input.agentNameFlag("agent", "Run this agent at each fire").pipe(Flag.optional)

const task = Flag.String("task").pipe(
  Flag.withDescription("Submit the task in this file (YAML or JSON, as POST /v1/tasks takes it) at each fire"),
  Flag.withMetavar("FILE"),
  Flag.mapEffect((path) =>
    readYamlFile("--task", path).pipe(
      Effect.flatMap((value) => decodeStrict(TaskSubmission, "--task", value, `${path}: not a task: `))
    )
  ),
  Flag.optional
)

const cron = Flag.String("cron").pipe(
  Flag.withDescription("A cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds"),
  Flag.withMetavar("EXPR"),
  Flag.optional
)

const every = Flag.Int("every").pipe(
  Flag.withDescription("Fire every N seconds, the first time at once"),
  Flag.withMetavar("SECONDS"),
  Flag.mapEffect((n) =>
    n >= 1 && n <= S.MAX_EVERY_SECONDS
      ? Effect.succeed(n)
      : Effect.fail(invalid("--every", `expected 1 to ${S.MAX_EVERY_SECONDS} seconds, got ${n}`))
  ),
  Flag.optional
)

const timezone = Flag.String("timezone").pipe(
  Flag.withDescription("The IANA time zone the cron expression is read in (default UTC)"),
  Flag.withMetavar("ZONE"),
  Flag.mapEffect((tz) => {
    const problem = Slots.timezoneProblem(tz)
    return problem === null ? Effect.succeed(tz) : Effect.fail(invalid("--timezone", problem))
  }),
  Flag.optional
)

const input = Flag.String("input").pipe(
  Flag.withDescription(
    "The input template: JSON or text whose {{input.slot}}, {{input.firedAt}}, {{input.coalesced}} are filled in"
  ),
  Flag.withMetavar("TEMPLATE"),
  Flag.map(Input.runInputOf),
  Flag.optional
)

const disabled = Flag.Boolean("disabled").pipe(
  Flag.withDescription("Create it disabled (it fires only when fired by hand)"),
  Flag.withDefault(false)
)

type AddInput = {
  readonly agent: Option.Option<string>
  readonly task: Option.Option<typeof TaskSubmission.Type>
  readonly cron: Option.Option<string>
  readonly every: Option.Option<number>
  readonly timezone: Option.Option<string>
}

/** Exactly one target and one timing, and a cron expression croner reads in the zone. */
const checkAdd = (i: AddInput) => {
  if (Option.isSome(i.agent) === Option.isSome(i.task)) {
    return Effect.fail(invalid("--agent, --task", "give exactly one of them"))
  }
  if (Option.isSome(i.cron) === Option.isSome(i.every)) {
    return Effect.fail(invalid("--cron, --every", "give exactly one of them"))
  }
  if (Option.isSome(i.cron)) {
    const problem = Slots.cronProblem(i.cron.value, Option.getOrElse(i.timezone, () => "UTC"), Date.now())
    if (problem !== null) return Effect.fail(invalid("--cron", problem))
  }
  return Effect.void
}

const when = (s: S.ScheduleView) => s.cron !== null ? `cron '${s.cron}' ${s.timezone}` : `every ${s.everySeconds} s`

const targetOf = (s: S.ScheduleView) =>
  "agentName" in s.target ? `agent ${s.target.agentName}` : `task ${s.target.task.kind}`

export const summary = (s: S.ScheduleView): string =>
  [
    `${s.id}  ${s.name}  ${when(s)}  → ${targetOf(s)}${s.enabled ? "" : "  (disabled)"}`,
    ...(s.loop === null ? [] : [`  loop of agent ${s.loop.agentName} (${s.loop.tier})`]),
    `  next: ${s.nextFireAt ?? "-"}   fires: ${s.fires}`,
    ...(s.lastFire === null ? [] : [`  last: ${fireLine(s.lastFire)}`])
  ].join("\n")

const fireLine = (f: S.FireView) =>
  `${f.manual ? "manual" : `slot ${f.slot}`} at ${f.firedAt}${f.coalesced > 1 ? ` (coalesced ${f.coalesced})` : ""}${
    f.runId !== null ? ` → run ${f.runId}` : f.taskId !== null ? ` → task ${f.taskId}` : ""
  }${f.error !== null ? ` (not started: ${f.error})` : f.dispatched ? "" : " (starting)"}`

const list = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listSchedules, {})
    yield* Console.log(
      i.json
        ? JSON.stringify(reply.body, null, 2)
        : reply.value.items.map((s) =>
          `${s.id}  ${s.name}  ${when(s)}  next ${s.nextFireAt ?? "-"}${s.enabled ? "" : "  (disabled)"}`
        ).join("\n")
    )
  })
).pipe(Command.withDescription("List the schedules, loop agents' included"), Command.withAlias("ls"))

const get = Command.make(
  "get",
  { id: idArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getSchedule, { params: { id: i.id } })
    yield* Console.log(i.json ? JSON.stringify(reply.body, null, 2) : summary(reply.value))
  })
).pipe(Command.withDescription("Show a schedule: its timing, next slot and last fire"))

const add = Command.make(
  "add",
  { name: nameArgument, agent, task, cron, every, timezone, input, disabled, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.createSchedule, {
      body: {
        name: i.name,
        target: Option.isSome(i.agent) ? { agentName: i.agent.value } : { task: Option.getOrThrow(i.task) },
        ...Option.match(i.cron, { onNone: () => ({}), onSome: (cron) => ({ cron }) }),
        ...Option.match(i.every, { onNone: () => ({}), onSome: (everySeconds) => ({ everySeconds }) }),
        ...Option.match(i.timezone, { onNone: () => ({}), onSome: (timezone) => ({ timezone }) }),
        ...Option.match(i.input, { onNone: () => ({}), onSome: (inputTemplate) => ({ inputTemplate }) }),
        ...(i.disabled ? { enabled: false } : {})
      } as typeof S.ScheduleRequest.Encoded
    })
    yield* Console.log(i.json ? JSON.stringify(reply.body, null, 2) : summary(reply.value))
  })
).pipe(
  Command.validate((i) => checkAdd(i)),
  Command.withDescription("Schedule an agent's run (--agent) or a queue task (--task) on --cron or --every"),
  Command.withExamples([
    { command: "lantern schedules add nightly --agent reporter --cron '0 2 * * *' --timezone Europe/Berlin" },
    { command: "lantern schedules add ping --agent pinger --every 300 --input 'ping at {{input.slot}}'" }
  ])
)

const fire = Command.make(
  "fire",
  { id: idArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.fireSchedule, { params: { id: i.id } })
    yield* Console.log(i.json ? JSON.stringify(reply.body, null, 2) : fireLine(reply.value))
  })
).pipe(Command.withDescription("Fire a schedule now (journaled as a manual fire) and start its run or task"))

const remove = Command.make(
  "delete",
  { id: idArgument },
  Effect.fn(function*(i) {
    yield* Client.call(endpoints.deleteSchedule, { params: { id: i.id } })
    yield* Console.log(`deleted ${i.id}`)
  })
).pipe(Command.withDescription("Delete a schedule: it fires no more"))

export const schedules = Command.make("schedules").pipe(
  Command.withDescription("List, add, fire and delete schedules of agent runs and queue tasks"),
  Command.withSubcommands([list, get, add, fire, remove])
)
