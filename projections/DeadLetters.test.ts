// Dead letters end to end on a real nats-server, against both drivers: an event the database refuses for its
// data (a NUL or a lone surrogate in a run's input) or that cannot be decoded (a StepsCompleted with one bad
// completion included: none of its steps is folded) is recorded as a dead letter and skipped, and another tenant's
// later events are projected at once; a restart neither blocks nor repeats it.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Fiber, Layer, ManagedRuntime, Metric } from "effect"
import { Journal } from "../bus/Journal.ts"
import { Nats } from "../bus/Nats.ts"
import * as Topology from "../bus/Topology.ts"
import type { ActorAddress, Envelope } from "../schema/Envelope.ts"
import { busLayer, startServer, type TestServer } from "../tests/support/Bus.ts"
import * as Drivers from "../tests/support/Drivers.ts"
import { probeUntil } from "../tests/support/Poll.ts"
import * as DeadLetters from "./DeadLetters.ts"
import * as Fixtures from "./Fixtures.ts"
import * as Migrations from "./Migrations.ts"
import * as Projector from "./Projector.ts"
import * as Queries from "./Queries.ts"
import { Sql } from "./Sql.ts"

type Services = Sql | Nats | Journal

const drivers = Drivers.sql()

/** A marker put in every poison payload: no dead letter, log line or reason may contain it. */
const MARKER = "payload-marker-7f3a"

let keys = 0
/** Appends entries to their journals in order; returns the stream sequence of each. */
const append = (entries: ReadonlyArray<Fixtures.Entry>) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const seqs: Array<number> = []
    for (const entry of entries) {
      const expected = yield* journal.lastSeq(entry.address)
      const appended = yield* journal.append(entry.address, [Fixtures.envelopeOf(entry, `dl-${++keys}`)], expected)
      seqs.push(appended.lastSeq)
    }
    return seqs
  })

/** Publishes raw bytes on a journal subject, as a foreign or broken writer could. */
const publishRaw = (subject: string, data: string) =>
  Effect.gen(function*() {
    const { js } = yield* Nats
    return yield* Effect.promise(() => js.publish(subject, data).then((ack) => ack.seq))
  })

const poisonRun = (tenant: string, n: number, input: unknown): Fixtures.Entry => ({
  ...Fixtures.startedRuns(tenant, 1, n)[0]!,
  event: {
    ...(Fixtures.startedRuns(tenant, 1, n)[0]!.event as Extract<Fixtures.Entry["event"], { _tag: "RunStarted" }>),
    input
  }
})

const lettersOf = Effect.map(DeadLetters.list(), (all) => [...all].sort((a, b) => a.seq - b.seq))

for (const driver of drivers) {
  describe.skipIf(driver.skip)(`dead letters: ${driver.title}`, () => {
    let server: TestServer
    let rt: ManagedRuntime.ManagedRuntime<Services, unknown>
    let stopDb: () => Promise<void> = async () => {}
    let fiber: Fiber.Fiber<never, unknown> | undefined
    const startProjectors = () => {
      fiber = rt.runFork(Projector.run)
    }
    const stopProjectors = async () => {
      if (fiber !== undefined) await rt.runPromise(Fiber.interrupt(fiber))
      fiber = undefined
    }

    beforeAll(async () => {
      server = await startServer("lantern-dead-letters")
      const db = await driver.start()
      stopDb = db.stop
      rt = ManagedRuntime.make(Layer.mergeAll(busLayer(server.handle.url), db.layer) as Layer.Layer<Services, unknown>)
      await rt.runPromise(Topology.apply)
      await rt.runPromise(Migrations.migrate)
    }, 60_000)
    afterAll(async () => {
      await stopProjectors()
      await rt?.dispose()
      await stopDb()
      await server?.cleanup()
    })

    it("dead-letters events the database refuses, and projects another tenant's later events without waiting", async () => {
      // tenant A's poison: a NUL (Postgres refuses it in text and jsonb: 22P05) and a lone surrogate (22P02)
      const poisonSeqs = await rt.runPromise(append([
        poisonRun("ta", 1, { text: `${MARKER} a\u0000b` }),
        poisonRun("ta", 2, { text: `${MARKER} \ud800` })
      ]))
      // then tenant B's whole realistic journal, and one good run of tenant A
      await rt.runPromise(
        append([...Fixtures.agentEntries("tb"), ...Fixtures.runEntries("tb"), ...Fixtures.startedRuns("ta", 1, 3)])
      )
      const t0 = Date.now()
      startProjectors()
      const page = await probeUntil(
        () => rt.runPromise(Queries.listRuns("tb")),
        (p) => p.items.map((r) => r.status).join() === "canceled,failed,succeeded"
      )
      const elapsed = Date.now() - t0
      expect(page.items.map((r) => r.status)).toEqual(["canceled", "failed", "succeeded"])
      // not blocked: B's rows come as fast as a first projection does (generous for a busy 2-core machine)
      expect(elapsed).toBeLessThan(10_000)
      expect(await rt.runPromise(Queries.getRun("ta", Fixtures.runId(3)))).toMatchObject({ status: "running" })
      expect(await rt.runPromise(Queries.getRun("ta", Fixtures.runId(1)))).toBeNull()
      expect(await rt.runPromise(Queries.getRun("ta", Fixtures.runId(2)))).toBeNull()

      const letters = await rt.runPromise(lettersOf)
      expect(letters.map((d) => [d.projector, d.stream, d.seq, d.tenant, d.eventType])).toEqual(
        poisonSeqs.map((seq) => ["projector-runs", Topology.RUNS, seq, "ta", "RunStarted"])
      )
      expect(letters[0]!.subject).toBe(`lantern.run.ta.${Fixtures.runId(1)}`)
      expect(letters[0]!.reason).toMatch(/^SQLSTATE 22P05: /)
      expect(letters[1]!.reason).toMatch(/^SQLSTATE 22P0[25]: /)
      expect(letters.every((d) => !JSON.stringify(d).includes(MARKER))).toBe(true)
      expect(letters.every((d) => !Number.isNaN(Date.parse(d.failedAt)))).toBe(true)
      const last = await rt.runPromise(Effect.gen(function*() {
        return yield* (yield* Journal).lastSeq({ type: "run", tenant: "ta", id: Fixtures.runId(3) })
      }))
      expect(await rt.runPromise(Projector.checkpoint("projector-runs", Topology.RUNS))).toBeGreaterThanOrEqual(last)
      expect(await rt.runPromise(DeadLetters.count)).toBe(2)
      const counted = await rt.runPromise(
        Metric.value(Metric.withAttributes(DeadLetters.counter, { projector: "projector-runs" }))
      )
      expect(counted.count).toBeGreaterThanOrEqual(2)

      // a restart reads on from the checkpoint: no second dead letter, nothing blocked
      await stopProjectors()
      const before = await rt.runPromise(DeadLetters.list())
      await rt.runPromise(append(Fixtures.startedRuns("tb", 1, 4)))
      startProjectors()
      expect(await probeUntil(() => rt.runPromise(Queries.getRun("tb", Fixtures.runId(4))), (r) => r !== null))
        .toMatchObject({ status: "running" })
      expect(await rt.runPromise(DeadLetters.list())).toEqual(before)
    })

    it("dead-letters a message it cannot decode (corrupt, or of an unknown version) and projects what follows", async () => {
      const corrupt = await rt.runPromise(
        publishRaw(`lantern.run.ta.${Fixtures.runId(5)}`, `{"type": "RunStarted", "not json ${MARKER}`)
      )
      const address: ActorAddress = { type: "run", tenant: "ta", id: Fixtures.runId(6) }
      const future: Envelope = {
        ...Fixtures.envelopeOf(
          { address, at: Fixtures.at(300), event: { _tag: "RunSucceeded", output: MARKER } },
          "future-1"
        ),
        version: 99
      }
      const unknown = await rt.runPromise(publishRaw(`lantern.run.ta.${Fixtures.runId(6)}`, JSON.stringify(future)))
      const wrongShape = await rt.runPromise(publishRaw(
        `lantern.run.ta.${Fixtures.runId(7)}`,
        JSON.stringify({ ...future, version: 1, type: "RunStarted", payload: { input: MARKER } })
      ))
      await rt.runPromise(append(Fixtures.startedRuns("tb", 1, 8)))
      await probeUntil(() => rt.runPromise(Queries.getRun("tb", Fixtures.runId(8))), (r) => r !== null)
      expect(await rt.runPromise(Queries.getRun("tb", Fixtures.runId(8)))).toMatchObject({ status: "running" })
      const letters = (await rt.runPromise(lettersOf)).filter((d) => d.seq >= corrupt)
      expect(letters.map((d) => [d.seq, d.tenant, d.eventType])).toEqual([
        [corrupt, "ta", null],
        [unknown, "ta", "RunSucceeded"],
        [wrongShape, "ta", "RunStarted"]
      ])
      expect(letters[0]!.reason).toMatch(/^undecodable event: /)
      expect(letters[1]!.reason).toBe("unknown event version: RunSucceeded v99 is not known to this version of Lantern")
      expect(letters[2]!.reason).toMatch(/^undecodable event: /)
      expect(letters.every((d) => !JSON.stringify(d).includes(MARKER))).toBe(true)
    })

    it("dead-letters a StepsCompleted with one malformed completion (ADR 0067): none of its steps is folded", async () => {
      const address: ActorAddress = { type: "run", tenant: "ta", id: Fixtures.runId(9) }
      const subject = `lantern.run.ta.${Fixtures.runId(9)}`
      await rt.runPromise(append(Fixtures.startedRuns("ta", 1, 9)))
      if (fiber === undefined) startProjectors()
      const local = (i: number, output: string) => ({
        stepId: `turn-1/call_${i}`,
        attempt: 1,
        result: { _tag: "tool" as const, callId: `call_${i}`, output },
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0.5,
        durationMs: 1,
        request: { _tag: "tool" as const, call: { id: `call_${i}`, name: "calculator", arguments: {} } }
      })
      const envelope = Fixtures.envelopeOf({
        address,
        at: Fixtures.at(400),
        event: { _tag: "StepsCompleted", steps: [local(0, MARKER), local(1, "2"), local(2, MARKER)] }
      }, "batch-1")
      // the second completion's attempt as text: its first and third steps are well-formed
      const steps = (envelope.payload as { steps: Array<Record<string, unknown>> }).steps
      steps[1] = { ...steps[1], attempt: "1" }
      const bad = await rt.runPromise(publishRaw(subject, JSON.stringify(envelope)))
      // the run goes on after it: its end is projected, the batch's steps are not
      await rt.runPromise(
        append([{ address, at: Fixtures.at(401), event: { _tag: "RunSucceeded", output: "done" } }])
      )
      const run = await probeUntil(
        () => rt.runPromise(Queries.getRun("ta", Fixtures.runId(9))),
        (r) => r?.status === "succeeded"
      )
      expect(run).toMatchObject({ status: "succeeded", steps: 0, costUsd: 0 })
      expect(await rt.runPromise(Queries.listSteps("ta", Fixtures.runId(9)))).toEqual([])
      const letters = (await rt.runPromise(lettersOf)).filter((d) => d.seq === bad)
      expect(letters.map((d) => [d.projector, d.tenant, d.subject, d.eventType])).toEqual([
        ["projector-runs", "ta", subject, "StepsCompleted"]
      ])
      expect(letters[0]!.reason).toMatch(/^undecodable event: .*attempt/s)
      expect(JSON.stringify(letters)).not.toContain(MARKER)
      // and the run's own reader refuses its journal loudly rather than fold a part of the batch
      const refused = await rt.runPromise(Effect.gen(function*() {
        return yield* Effect.flip((yield* Journal).read(address))
      }))
      expect(refused).toMatchObject({ _tag: "CorruptEvent", seq: bad })
    })

    it("rebuild forgets a projector's dead letters, and a replay from zero records the same ones", async () => {
      const before = (await rt.runPromise(DeadLetters.list())).map(({ failedAt: _, ...d }) => d)
      await stopProjectors()
      await rt.runPromise(Projector.rebuild("projector-runs"))
      expect(await rt.runPromise(DeadLetters.count)).toBe(0)
      startProjectors()
      const after = await probeUntil(
        () => rt.runPromise(DeadLetters.list()),
        (l) => l.length === before.length
      )
      expect(after.map(({ failedAt: _, ...d }) => d).sort((a, b) => a.seq - b.seq)).toEqual(
        [...before].sort((a, b) => a.seq - b.seq)
      )
      await probeUntil(() => rt.runPromise(Queries.getRun("tb", Fixtures.runId(8))), (r) => r !== null)
    })
  })
}
