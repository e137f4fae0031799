// Schedules (ADR 0055). First against a real nats-server and the real journal, ticked with an injected clock: a tick at
// the same instant twice fires once; hosts ticking the same slot at once fire it once (the append expects the journal's
// last sequence and carries the slot's message id); after downtime ONE fire coalesces the missed slots; a fire whose
// host died before starting its run is dispatched by another host's tick, once. Then against a real stack (`lantern
// serve`, offline model): the API refuses bad definitions naming the field and changing nothing, a schedule's fire
// starts a run with its rendered input, a manual fire is journaled and starts one too; a loop agent gets its schedule
// when published and loses it when its loop is dropped, its runs end with LoopCompleted, and a run re-driven after
// LoopCompleted succeeds with the recorded output without a model or tool step.
import { Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as RunActor from "../actors/run/Runs.ts"
import type { RunStarted } from "../schema/Events.ts"
import { api, eventually, spawnLantern, type StackProcess, startStack } from "./support/Stack.ts"
import { Journal } from "../bus/Journal.ts"
import { Nats } from "../bus/Nats.ts"
import { Snapshots } from "../bus/Snapshots.ts"
import * as Topology from "../bus/Topology.ts"
import { Ids } from "../actors/kernel/Ids.ts"
import type * as Decider from "../actors/schedule/Decider.ts"
import * as Schedules from "../actors/schedule/Schedules.ts"
import type { ScheduleEvent } from "../schema/Schedule.ts"
import { busLayer, startServer, type TestServer } from "./support/Bus.ts"

type Services = Journal | Nats | Snapshots | Ids
type Fired = Extract<ScheduleEvent, { _tag: "ScheduleFired" }>

const at = (t: string) => Date.parse(`2026-12-03T${t}Z`)

/** A host: its own connection to the bus, its own ticker, and what its dispatch was asked to start. */
const host = (url: string) => {
  const runtime = ManagedRuntime.make(
    Layer.merge(busLayer(url), Ids.layer) as unknown as Layer.Layer<Services, unknown>
  )
  const started: Array<{ id: string; fireId: string }> = []
  const dispatch: Schedules.Dispatch = (_tenant, id, _definition, fire) =>
    Effect.sync(() => {
      started.push({ id, fireId: fire.fireId })
      return { runId: `run-for-${fire.fireId}`, taskId: null, error: null }
    })
  const ticker = runtime.runPromise(Schedules.makeTicker(dispatch))
  return {
    runtime,
    started,
    /** Ticks at `now`; the ids of the schedules this host fired. */
    tick: async (now: number) => (await runtime.runPromise((await ticker).tick(now))).fired.map((f) => f.id),
    run: <A, E>(effect: Effect.Effect<A, E, Services>) => runtime.runPromise(effect)
  }
}

const every = (everySeconds: number): Decider.Definition => ({
  name: `every ${everySeconds} s`,
  target: { agentName: "worker" },
  cron: null,
  everySeconds,
  timezone: "UTC",
  enabled: true
})

let n = 0
const create = (h: ReturnType<typeof host>, definition: Decider.Definition, anchor: number) => {
  const id = `sch_${String(++n).padStart(26, "0")}`
  return h.run(
    Effect.as(
      Schedules.actor.execute(Schedules.addressOf("t1", id), { _tag: "Create", id, definition, at: anchor }, {
        idempotencyKey: `t1:${id}:create`,
        correlationId: id
      }),
      id
    )
  )
}

const fires = (h: ReturnType<typeof host>, id: string) =>
  h.run(Effect.map(
    Journal.use((j) => j.read(Schedules.addressOf("t1", id))),
    (stored) => stored.map((s) => s.event).filter((e): e is Fired => e._tag === "ScheduleFired")
  ))

describe("schedules on the real journal", () => {
  let server: TestServer
  let a: ReturnType<typeof host>
  let b: ReturnType<typeof host>
  let c: ReturnType<typeof host>
  beforeAll(async () => {
    server = await startServer("lantern-schedules")
    a = host(server.handle.url)
    await a.run(Effect.asVoid(Topology.apply) as Effect.Effect<void, unknown, never>)
    b = host(server.handle.url)
    c = host(server.handle.url)
  }, 60_000)
  afterAll(async () => {
    await Promise.all([a?.runtime.dispose(), b?.runtime.dispose(), c?.runtime.dispose()])
    await server?.cleanup()
  })

  it("a 305-second schedule ticked at 10:05, again at 10:05, then at 13:00 fires 1, 0, 1 times", async () => {
    const id = await create(a, every(305), at("10:00:00"))
    const counts: Array<number> = []
    for (const now of ["10:05:00", "10:05:00", "13:00:00"]) {
      counts.push((await a.tick(at(now))).filter((x) => x === id).length)
    }
    expect(counts).toEqual([1, 0, 1])
    const journaled = await fires(a, id)
    expect(journaled.map((f) => [f.slot, f.coalesced])).toEqual([[at("10:00:00"), 1], [at("12:57:55"), 35]])
    expect(a.started.filter((s) => s.id === id).map((s) => s.fireId)).toEqual(journaled.map((f) => f.fireId))
  })

  it("three hosts ticking the same slots at the same instants fire each slot once", async () => {
    const id = await create(a, every(60), at("10:00:00"))
    for (let minute = 0; minute < 6; minute++) {
      const now = at("10:00:00") + minute * 60_000 + 500
      const won = (await Promise.all([a.tick(now), b.tick(now), c.tick(now), a.tick(now)])).flat()
      expect(won.filter((x) => x === id)).toHaveLength(1)
    }
    const journaled = await fires(a, id)
    expect(journaled.map((f) => f.slot)).toEqual([0, 1, 2, 3, 4, 5].map((m) => at("10:00:00") + m * 60_000))
    expect(journaled.every((f) => f.coalesced === 1)).toBe(true)
    const dispatched = [...a.started, ...b.started, ...c.started].filter((s) => s.id === id)
    expect(dispatched.map((s) => s.fireId).sort()).toEqual(journaled.map((f) => f.fireId).sort())
  })

  it("after downtime, one fire for the missed slots; the next slot counts from now", async () => {
    const id = await create(a, { ...every(30), cron: "*/5 * * * *", everySeconds: null }, at("09:59:00"))
    await Promise.all([a.tick(at("10:00:10")), b.tick(at("10:00:10"))])
    // the hosts were down from 10:00:10 to 11:01:00: twelve slots (10:05 … 11:00) missed
    await Promise.all([b.tick(at("11:01:00")), c.tick(at("11:01:00"))])
    await Promise.all([a.tick(at("11:02:00")), c.tick(at("11:04:59"))])
    const journaled = await fires(a, id)
    expect(journaled.map((f) => [f.slot, f.coalesced])).toEqual([[at("10:00:00"), 1], [at("11:00:00"), 12]])
    await a.tick(at("11:05:00"))
    expect((await fires(a, id)).map((f) => f.slot)).toEqual([at("10:00:00"), at("11:00:00"), at("11:05:00")])
  })

  it("a fire whose host died before starting its run is started by another host's tick, once", async () => {
    const id = await create(a, every(3600), at("10:00:00"))
    // the fire is journaled (as a host does), and that host dies before it dispatches
    const won = await a.run(Schedules.fireDue(Schedules.addressOf("t1", id), at("10:00:01")))
    expect(won?.fired.fireId).toBe(`slot-${at("10:00:00")}`)
    // within the grace, nobody dispatches it (its own host may still be at it)
    await b.tick(at("10:00:05"))
    expect(b.started.filter((s) => s.id === id)).toEqual([])
    await Promise.all([b.tick(at("10:00:30")), c.tick(at("10:00:30"))])
    await Promise.all([b.tick(at("10:00:40")), c.tick(at("10:00:40"))])
    const dispatched = [...b.started, ...c.started].filter((s) => s.id === id)
    // dispatch may run on two hosts at once (each starts the run under the fire's key, so one run); it is recorded once
    expect(dispatched.length).toBeGreaterThanOrEqual(1)
    const stored = await a.run(Journal.use((j) => j.read(Schedules.addressOf("t1", id))))
    const records = stored.filter((s) => s.event._tag === "ScheduleDispatched")
    expect(records).toHaveLength(1)
    // and never again once recorded
    await b.tick(at("10:01:30"))
    expect([...b.started, ...c.started].filter((s) => s.id === id)).toHaveLength(dispatched.length)
  })
})

describe("schedules on a real stack", () => {
  let server: TestServer
  let stack: StackProcess
  let call: ReturnType<typeof api>
  let bus: ReturnType<typeof host>
  beforeAll(async () => {
    server = await startServer("lantern-schedules-stack")
    stack = await startStack({ natsUrl: server.handle.url, env: { LANTERN_SCHEDULE_TICK: "250 millis" } })
    call = api(stack)
    bus = host(server.handle.url)
    expect((await call("POST", "/v1/agents", { name: "worker", spec: { systemPrompt: "Report." } })).status).toBe(201)
  }, 300_000)
  afterAll(async () => {
    await bus?.runtime.dispose()
    await stack?.kill()
    await server?.cleanup()
  })

  const issueFor = (r: { status: number; json: any; text: string }, field: string) => {
    expect(r.status, r.text).toBe(400)
    const issue = (r.json.error.issues ?? []).find((i: { field: string }) => i.field === field)
    expect(issue, `no issue for '${field}' in ${r.text}`).toBeDefined()
    return issue as { field: string; message: string }
  }

  const base = { name: "hourly report", target: { agentName: "worker" } }

  it("refuses a bad definition with 400 naming the field, and creates nothing", async () => {
    issueFor(await call("POST", "/v1/schedules", { ...base, cron: "*/5 * * * *", everySeconds: 60 }), "everySeconds")
    issueFor(await call("POST", "/v1/schedules", base), "cron")
    expect(issueFor(await call("POST", "/v1/schedules", { ...base, cron: "61 * * * *" }), "cron").message).toContain(
      "minute"
    )
    issueFor(await call("POST", "/v1/schedules", { ...base, cron: "2026-12-03T10:00:00" }), "cron")
    expect(
      issueFor(
        await call("POST", "/v1/schedules", { ...base, cron: "0 8 * * *", timezone: "Mars/Olympus" }),
        "timezone"
      )
        .message
    ).toContain("Mars/Olympus")
    issueFor(await call("POST", "/v1/schedules", { ...base, everySeconds: 0 }), "everySeconds")
    issueFor(await call("POST", "/v1/schedules", { ...base, everySeconds: 60, color: "red" }), "color")
    issueFor(
      await call("POST", "/v1/schedules", { ...base, target: { agentName: "nobody" }, everySeconds: 60 }),
      "target.agentName"
    )
    issueFor(
      await call("POST", "/v1/schedules", { ...base, everySeconds: 60, inputTemplate: { text: "{{input.slot ==}}" } }),
      "inputTemplate"
    )
    expect((await call("GET", "/v1/schedules")).json.items).toEqual([])
  })

  it("fires an interval schedule at once, starting a run with the rendered input; a manual fire starts another", async () => {
    const created = await call("POST", "/v1/schedules", {
      ...base,
      everySeconds: 3600,
      inputTemplate: "Report for {{input.slot}} ({{input.coalesced}} slot)"
    })
    expect(created.status, created.text).toBe(201)
    const id = created.json.id as string
    expect(id).toMatch(/^sch_[0-9a-z]{26}$/)
    expect(created.json.timezone).toBe("UTC")
    const fired = await eventually(
      async () => {
        const r = await call("GET", `/v1/schedules/${id}`)
        return r.json.lastFire?.runId !== null && r.json.lastFire?.runId !== undefined ? r.json : null
      },
      60_000,
      "the schedule's first fire to start its run"
    )
    expect(fired.fires).toBe(1)
    expect(fired.lastFire.coalesced).toBe(1)
    expect(fired.lastFire.manual).toBe(false)
    expect(Date.parse(fired.nextFireAt) - Date.parse(fired.lastFire.slot)).toBe(3_600_000)
    const run = await call("GET", `/v1/runs/${fired.lastFire.runId}`)
    expect(run.status).toBe(200)
    expect(run.json.input).toBe(`Report for ${fired.lastFire.slot} (1 slot)`)

    const manual = await call("POST", `/v1/schedules/${id}/fire`)
    expect(manual.status, manual.text).toBe(201)
    expect(manual.json).toMatchObject({ manual: true, slot: null, coalesced: 0, dispatched: true, error: null })
    expect(manual.json.runId).toMatch(/^run_/)
    expect(manual.json.runId).not.toBe(fired.lastFire.runId)
    const after = (await call("GET", `/v1/schedules/${id}`)).json
    expect(after.fires).toBe(2)
    // a manual fire leaves the slots: the next one is where it was
    expect(after.nextFireAt).toBe(fired.nextFireAt)
    // and the ticks that follow fire nothing more: a witness schedule, due at every tick, shows two ticks have passed
    const witness = await call("POST", "/v1/schedules", { ...base, name: "witness", everySeconds: 1 })
    expect(witness.status, witness.text).toBe(201)
    await eventually(
      async () => (await call("GET", `/v1/schedules/${witness.json.id}`)).json.fires >= 2,
      60_000,
      "two ticks after the manual fire"
    )
    expect((await call("GET", `/v1/schedules/${id}`)).json.fires).toBe(2)
    expect((await call("DELETE", `/v1/schedules/${witness.json.id}`)).status).toBe(204)

    const renamed = await call("PUT", `/v1/schedules/${id}`, {
      ...base,
      name: "renamed",
      everySeconds: 3600,
      enabled: false
    })
    expect(renamed.status, renamed.text).toBe(200)
    expect(renamed.json).toMatchObject({ name: "renamed", enabled: false, nextFireAt: null, fires: 2 })
    issueFor(await call("PUT", `/v1/schedules/${id}`, { ...base, everySeconds: 60, cron: "* * * * *" }), "everySeconds")
    expect((await call("GET", "/v1/schedules")).json.items.map((s: { id: string }) => s.id)).toContain(id)
    expect((await call("DELETE", `/v1/schedules/${id}`)).status).toBe(204)
    expect((await call("GET", `/v1/schedules/${id}`)).status).toBe(404)
    expect((await call("DELETE", `/v1/schedules/${id}`)).status).toBe(404)
    expect((await call("POST", `/v1/schedules/${id}/fire`)).status).toBe(404)
    expect((await call("GET", "/v1/schedules")).json.items.map((s: { id: string }) => s.id)).not.toContain(id)
  })

  it("a loop agent gets its schedule, its runs end with LoopCompleted, and dropping the loop removes it", async () => {
    issueFor(
      await call("POST", "/v1/agents", {
        name: "bad-loop",
        spec: { systemPrompt: "x", loop: { tier: "nano", cron: "* * * * *" } }
      }),
      "spec.loop.cron"
    )
    issueFor(
      await call("POST", "/v1/agents", {
        name: "bad-loop",
        spec: { systemPrompt: "x", loop: { tier: "micro", cron: "nope" } }
      }),
      "spec.loop.cron"
    )
    const agent = await call("POST", "/v1/agents", {
      name: "watcher",
      spec: { systemPrompt: "Watch.", loop: { tier: "micro" } }
    })
    expect(agent.status, agent.text).toBe(201)
    const loop = await eventually(
      async () => {
        const items = (await call("GET", "/v1/schedules")).json.items as Array<any>
        return items.find((s) => s.loop?.agentName === "watcher")
      },
      60_000,
      "the loop agent's schedule"
    )
    expect(loop).toMatchObject({ cron: "*/5 * * * *", timezone: "UTC", loop: { tier: "micro" }, enabled: true })
    expect((await call("PUT", `/v1/schedules/${loop.id}`, { ...base, everySeconds: 60 })).status).toBe(409)
    expect((await call("DELETE", `/v1/schedules/${loop.id}`)).status).toBe(409)

    // a new version with another tier moves the same schedule
    expect(
      (await call("PUT", "/v1/agents/watcher", { spec: { systemPrompt: "Watch.", loop: { tier: "macro" } } })).status
    )
      .toBe(200)
    await eventually(async () => (await call("GET", `/v1/schedules/${loop.id}`)).json.cron === "0 8 * * *", 60_000)

    const fire = await call("POST", `/v1/schedules/${loop.id}/fire`)
    expect(fire.status, fire.text).toBe(201)
    const runId = fire.json.runId as string
    const events = await eventually(
      async () => {
        const r = await call("GET", `/v1/runs/${runId}/events`)
        const items = r.json?.items as Array<{ type: string; payload: any }> | undefined
        return items?.some((e) => e.type === "RunSucceeded") ? items : null
      },
      60_000,
      "the loop run to succeed"
    )
    const types = events.map((e) => e.type)
    expect(types.slice(-2)).toEqual(["LoopCompleted", "RunSucceeded"])
    expect(events.at(-2)!.payload.output).toBe(events.at(-1)!.payload.output)

    // the loop is dropped: its schedule goes
    expect((await call("PUT", "/v1/agents/watcher", { spec: { systemPrompt: "Watch." } })).status).toBe(200)
    await eventually(async () => (await call("GET", `/v1/schedules/${loop.id}`)).status === 404, 60_000)
    // an event-driven loop (nano) has none either
    expect(
      (await call("PUT", "/v1/agents/watcher", { spec: { systemPrompt: "Watch.", loop: { tier: "nano" } } })).status
    )
      .toBe(200)
    expect(
      (await call("PUT", "/v1/agents/watcher", { spec: { systemPrompt: "Watch!", loop: { tier: "meso" } } })).status
    )
      .toBe(200)
    await eventually(async () => (await call("GET", `/v1/schedules/${loop.id}`)).json.cron === "*/45 * * * *", 60_000)
  })

  it("a loop run re-driven after LoopCompleted succeeds with the recorded output, with no model or tool step", async () => {
    const fire = await call(
      "POST",
      `/v1/schedules/${
        (await call("GET", "/v1/schedules")).json.items.find((s: any) => s.loop?.agentName === "watcher").id
      }/fire`
    )
    const original = await eventually(async () => {
      const items = (await call("GET", `/v1/runs/${fire.json.runId}/events`)).json?.items as Array<any> | undefined
      return items?.some((e) => e.type === "RunSucceeded") ? items : null
    }, 60_000)
    const started = original.find((e) => e.type === "RunStarted")!.payload as Omit<RunStarted, "_tag">
    // a run whose host journaled LoopCompleted and died before its end was journaled
    const runId = `run_${"0".repeat(10)}${"redrive".padEnd(16, "x")}`.slice(0, 30)
    const address = RunActor.addressOf("dev", runId)
    const meta = (key: string) => ({ idempotencyKey: `${runId}:${key}`, correlationId: runId })
    await bus.run(RunActor.actor.execute(address, { ...started, _tag: "StartRun", runId }, meta("start")))
    await bus.run(
      RunActor.actor.execute(address, { _tag: "CompleteLoop", output: "recorded before the crash" }, meta("loop"))
    )
    await bus.run(
      Nats.use(({ js }) =>
        Effect.promise(() => js.publish(RunActor.workSubject("dev", runId), JSON.stringify({ tenant: "dev", runId })))
      )
    )
    const events = await eventually(
      async () => {
        const items = (await call("GET", `/v1/runs/${runId}/events`)).json?.items as Array<any> | undefined
        return items?.some((e) => e.type === "RunSucceeded") ? items : null
      },
      60_000,
      "the re-driven loop run to succeed"
    )
    expect(events.map((e) => e.type)).toEqual(["RunStarted", "LoopCompleted", "RunSucceeded"])
    expect(events[2].payload.output).toBe("recorded before the crash")
  })

  it("lantern schedules add|list|get|fire|delete, and bad usage exits 2 naming the option", async () => {
    const lantern = async (...args: Array<string>) => {
      const p = spawnLantern(["schedules", ...args], { LANTERN_URL: stack.url, LANTERN_API_TOKEN: stack.token })
      const code = await p.exited
      return { code, output: p.output() }
    }
    const bad = await Promise.all([
      lantern("add", "x", "--agent", "worker"),
      lantern("add", "x", "--agent", "worker", "--cron", "*/5 * * * *", "--every", "60"),
      lantern("add", "x", "--agent", "worker", "--cron", "61 * * * *"),
      lantern("add", "x", "--agent", "worker", "--cron", "0 8 * * *", "--timezone", "Mars/Olympus"),
      lantern("get", "not-an-id")
    ])
    expect(bad.map((r) => r.code)).toEqual([2, 2, 2, 2, 2])
    expect(bad[1]!.output).toContain("--cron, --every")
    expect(bad[2]!.output).toContain("--cron")
    expect(bad[3]!.output).toContain("Mars/Olympus")

    const added = await lantern(
      "add",
      "nightly",
      "--agent",
      "worker",
      "--cron",
      "0 2 * * *",
      "--timezone",
      "Europe/Berlin",
      "--json"
    )
    expect(added.code, added.output).toBe(0)
    const view = JSON.parse(added.output.slice(added.output.indexOf("{")))
    expect(view).toMatchObject({ name: "nightly", cron: "0 2 * * *", timezone: "Europe/Berlin", fires: 0 })
    const listed = await lantern("list")
    expect(listed.output).toContain(view.id)
    const fired = await lantern("fire", view.id)
    expect(fired.code, fired.output).toBe(0)
    expect(fired.output).toMatch(/manual at .* → run run_/)
    expect((await lantern("get", view.id)).output).toContain("fires: 1")
    expect((await lantern("delete", view.id)).code).toBe(0)
    expect((await lantern("get", view.id)).code).toBe(1)
  }, 120_000)

  it("a task target submits a task to the queue at each fire, its payload the rendered template, once per fire", async () => {
    const created = await call("POST", "/v1/schedules", {
      name: "queue it",
      target: { task: { kind: "report", source: "schedule", payload: { fixed: true }, agentName: "worker" } },
      cron: "0 3 * * *",
      inputTemplate: { fire: "{{input.fireId}}", manual: "{{input.manual}}" }
    })
    expect(created.status, created.text).toBe(201)
    const fire = await call("POST", `/v1/schedules/${created.json.id}/fire`)
    expect(fire.status, fire.text).toBe(201)
    expect(fire.json.runId).toBeNull()
    expect(fire.json.error).toBeNull()
    expect(fire.json.taskId).toMatch(/^tsk_[0-9a-z]{26}$/)
    const task = await call("GET", `/v1/tasks/${fire.json.taskId}`)
    expect(task.status, task.text).toBe(200)
    expect(task.json.payload).toEqual({ fire: "manual-1", manual: true })
    expect(task.json.kind).toBe("report")
  })
})
