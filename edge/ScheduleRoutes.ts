// Schedules over HTTP (ADR 0055): a definition is checked before it is journaled (exactly one of cron and everySeconds,
// a cron expression croner reads, an IANA time zone, templates that parse, an agent that exists), so a bad one is a
// 400 naming the field and changes nothing.
import { Clock, Effect } from "effect"
import { Agents } from "../actors/agent/Agents.ts"
import { Schedules } from "../actors/schedule/Schedules.ts"
import * as Slots from "../actors/schedule/Slots.ts"
import * as Expression from "../schema/Expression.ts"
import type { ScheduleRequest } from "../schema/Schedule.ts"
import { BadRequest } from "./Http.ts"
import { actorOf, handlers, reply } from "./Serve.ts"

type Issue = { readonly field: string; readonly message: string }

/** What is wrong with a schedule's definition, field by field (none: it may be journaled). */
export const problems = (request: ScheduleRequest, now: number): ReadonlyArray<Issue> => {
  const issues: Array<Issue> = []
  if (request.cron === undefined && request.everySeconds === undefined) {
    issues.push({ field: "cron", message: "give exactly one of cron and everySeconds; got neither" })
  }
  if (request.cron !== undefined && request.everySeconds !== undefined) {
    issues.push({ field: "everySeconds", message: "give exactly one of cron and everySeconds; got both" })
  }
  const timezone = request.timezone ?? "UTC"
  const zone = Slots.timezoneProblem(timezone)
  if (zone !== null) issues.push({ field: "timezone", message: zone })
  if (request.cron !== undefined && zone === null) {
    const cron = Slots.cronProblem(request.cron, timezone, now)
    if (cron !== null) issues.push({ field: "cron", message: `not a cron expression: ${cron}` })
  }
  for (const template of Expression.stringsOf(request.inputTemplate ?? null)) {
    try {
      Expression.parseTemplate(template)
    } catch (e) {
      issues.push({ field: "inputTemplate", message: (e as Error).message })
      break
    }
  }
  return issues
}

const checked = (tenant: string, request: ScheduleRequest) =>
  Effect.gen(function*() {
    const issues = [...problems(request, yield* Clock.currentTimeMillis)]
    if ("agentName" in request.target) {
      const agentName = request.target.agentName
      const version = request.target.agentVersion
      const found = yield* (yield* Agents).version(tenant, agentName, version).pipe(
        Effect.as(null),
        Effect.catchTags({
          AgentNotFound: () => Effect.succeed(`no agent '${agentName}' in this tenant`),
          AgentVersionNotFound: () => Effect.succeed(`agent '${agentName}' has no version ${version}`)
        })
      )
      if (found !== null) {
        issues.push({ field: version === undefined ? "target.agentName" : "target.agentVersion", message: found })
      }
    }
    if (issues.length > 0) return yield* new BadRequest({ issues })
    return request
  })

export const scheduleHandlers = handlers({
  createSchedule: ({ tenant, body }) =>
    Effect.gen(function*() {
      const request = yield* checked(tenant, body)
      const view = yield* (yield* Schedules).create(tenant, request)
      return reply(201, view, { location: `/v1/schedules/${view.id}` })
    }),
  listSchedules: ({ tenant }) => Effect.map(Schedules.use((s) => s.list(tenant)), (items) => ({ items })),
  getSchedule: ({ tenant, params }) => Schedules.use((s) => s.get(tenant, params.id)),
  updateSchedule: ({ tenant, params, body }) =>
    Effect.gen(function*() {
      const schedules = yield* Schedules
      yield* schedules.get(tenant, params.id)
      const request = yield* checked(tenant, body)
      return yield* schedules.update(tenant, params.id, request)
    }),
  deleteSchedule: ({ tenant, principal, params }) =>
    Effect.as(Schedules.use((s) => s.remove(tenant, params.id, actorOf(principal))), null),
  fireSchedule: ({ tenant, principal, params }) =>
    Effect.map(Schedules.use((s) => s.fire(tenant, params.id, actorOf(principal))), (fire) => reply(201, fire))
})
