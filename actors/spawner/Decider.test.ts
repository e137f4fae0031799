// The workload decider: the journal's order, reports ignored once the workload ended, vending only of declared
// secrets while it runs, termination refused twice, adoption and loss.
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { WorkloadSpec } from "../../schema/Workload.ts"
import { fold } from "../kernel/Decider.ts"
import { type Command, decider, initialState, type State } from "./Decider.ts"

const spec: WorkloadSpec = {
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name: "w" },
  spec: {
    command: ["true"],
    isolation: "standard",
    limits: { vcpu: 1, memoryMb: 128, timeoutSeconds: 10 },
    network: "none",
    secrets: [{ envName: "TOKEN", secretRef: "lantern.secret://token" }]
  }
}
const d = decider("wl_x")
const run = (commands: ReadonlyArray<Command>): { state: State; events: Array<{ _tag: string }> } => {
  let state = initialState
  const events: Array<{ _tag: string }> = []
  for (const c of commands) {
    const r = d.decide(c, state)
    if (Result.isFailure(r)) throw r.failure
    events.push(...r.success)
    state = fold(d, r.success, state)
  }
  return { state, events }
}
const started: ReadonlyArray<Command> = [
  { _tag: "Schedule", spec, input: null, by: "t" },
  { _tag: "Place", backend: "bwrap" },
  { _tag: "IdentityMinted", keyId: "k", expiresAt: "x" },
  { _tag: "Spawned", host: "h1", pid: 7, enforced: ["timeout"] }
]
const usage = { wallMs: 5, cpuMs: 1, peakRssKb: null }

describe("the workload decider", () => {
  it("journals scheduled → placed → identity → spawned → reports → exited, then nothing more", () => {
    const { state, events } = run([
      ...started,
      {
        _tag: "Report",
        reports: [{ _tag: "output", stream: "stdout", text: "hi" }, { _tag: "exited", code: 0, usage }, {
          _tag: "output",
          stream: "stdout",
          text: "late"
        }]
      },
      { _tag: "Report", reports: [{ _tag: "heartbeat", at: "t", cpuMs: 1, rssKb: 1 }] },
      { _tag: "Fail", reason: "late" }
    ])
    expect(events.map((e) => e._tag)).toEqual([
      "WorkloadScheduled",
      "WorkloadPlaced",
      "WorkloadIdentityMinted",
      "WorkloadSpawned",
      "WorkloadOutput",
      "WorkloadExited"
    ])
    expect(state.status).toBe("exited")
    expect(state.exitCode).toBe(0)
  })

  it("journals a first start's Scheduled, Placed and IdentityMinted as one command, once (ADR 0069)", () => {
    const start: Command = { _tag: "Start", spec, input: "in", by: "t", backend: "bwrap", keyId: "k", expiresAt: "x" }
    const one = run([start, { _tag: "Spawned", host: "h1", pid: 7, enforced: ["timeout"] }])
    const steps = run(started)
    expect(one.events).toEqual(steps.events.map((e) => e._tag === "WorkloadScheduled" ? { ...e, input: "in" } : e))
    expect(one.state).toEqual({ ...steps.state, input: "in" })
    // a start re-sent after it was journaled (or after a Schedule) journals nothing more
    expect(run([start, start]).events).toHaveLength(3)
    expect(run([started[0]!, start]).events).toHaveLength(1)
  })

  it("vends only declared secrets, only before the workload ends", () => {
    const { state } = run([...started, { _tag: "Vend", envName: "TOKEN" }])
    expect(state.vended).toEqual(["TOKEN"])
    expect(Result.isFailure(d.decide({ _tag: "Vend", envName: "OTHER" }, state))).toBe(true)
    const ended = run([...started, { _tag: "Terminate", reason: "r", by: "op", usage: null }]).state
    const refused = d.decide({ _tag: "Vend", envName: "TOKEN" }, ended)
    expect(Result.isFailure(refused) && refused.failure._tag).toBe("VendRefused")
  })

  it("refuses a second termination, and anything to a workload never scheduled", () => {
    const ended = run([...started, { _tag: "Terminate", reason: "r", by: "op", usage: null }]).state
    const again = d.decide({ _tag: "Terminate", reason: "r", by: "op", usage: null }, ended)
    expect(Result.isFailure(again) && again.failure._tag).toBe("WorkloadFinished")
    const none = d.decide({ _tag: "Place", backend: "bwrap" }, initialState)
    expect(Result.isFailure(none) && none.failure._tag).toBe("WorkloadNotFound")
  })

  it("is scheduled once, adopted once per host, and a lost workload is failed", () => {
    const { state, events } = run([
      ...started,
      { _tag: "Schedule", spec, input: null, by: "t" },
      { _tag: "Adopt", host: "h2" },
      { _tag: "Adopt", host: "h2" },
      { _tag: "Fail", reason: "lost: host h2 died" }
    ])
    expect(events.filter((e) => e._tag === "WorkloadScheduled")).toHaveLength(1)
    expect(events.filter((e) => e._tag === "WorkloadAdopted")).toHaveLength(1)
    expect(state.status).toBe("failed")
    expect(state.host).toBe("h2")
  })

  it("starts again only an idempotent workload that still runs, counting its attempts", () => {
    const plain = run([...started, { _tag: "Restart", reason: "lost" }])
    expect(plain.events.filter((e) => e._tag === "WorkloadRestarted")).toHaveLength(0)
    const idempotent: Command = {
      _tag: "Schedule",
      spec: { ...spec, spec: { ...spec.spec, idempotent: true } },
      input: null,
      by: "t"
    }
    const again = run([
      idempotent,
      ...started.slice(1),
      { _tag: "Restart", reason: "lost" },
      { _tag: "Restart", reason: "lost again before it started" },
      { _tag: "Spawned", host: "h2", pid: 9, enforced: [] }
    ])
    expect(again.events.filter((e) => e._tag === "WorkloadRestarted")).toHaveLength(1)
    expect(again.state).toMatchObject({ status: "running", attempt: 2, host: "h2" })
  })
})

describe("model calls (ADR 0062)", () => {
  const called: Command = {
    _tag: "ModelCalled",
    call: {
      model: "auto",
      chosen: "offline/echo",
      cached: false,
      finishReason: "stop",
      tokensIn: 10,
      tokensOut: 4,
      costUsd: 0.25,
      durationMs: 3
    }
  }
  it("are added up while the workload runs, and not journaled once it has ended", () => {
    const { state, events } = run([...started, called, called])
    expect(events.filter((e) => e._tag === "WorkloadModelCalled")).toHaveLength(2)
    expect([state.modelCalls, state.tokensIn, state.tokensOut, state.costUsd]).toEqual([2, 20, 8, 0.5])
    const after = run([...started, { _tag: "Report", reports: [{ _tag: "exited", code: 0, usage }] }, called])
    expect(after.events.some((e) => e._tag === "WorkloadModelCalled")).toBe(false)
  })
})
