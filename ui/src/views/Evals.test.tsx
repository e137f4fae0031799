// The evals view's words and states against a fake edge: an experiment's verdict, the empty states, and one eval run
// read again on each frame of its stream until `finished`.
import { cleanup, render, screen } from "@solidjs/testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { ExperimentView } from "../../../schema/Experiment.ts"
import * as Sse from "../../../schema/Sse.ts"
import { makeClient } from "../api.ts"
import { EvalRun, Evals, verdictOf } from "./Evals.tsx"

afterEach(() => {
  cleanup()
  vi.unstubAllGlobals()
})

const experiment = (extra: Partial<ExperimentView> = {}): ExperimentView => ({
  id: "exp_1",
  agentName: "calc",
  name: "brevity",
  control: 1,
  variant: 2,
  trafficPercent: 50,
  metric: "feedback",
  suiteId: null,
  autoPromote: false,
  minRuns: 10,
  minLift: 0.1,
  status: "running",
  winner: null,
  promoted: false,
  concludedBy: null,
  reason: null,
  startedAt: "2026-12-03T06:00:00.000Z",
  concludedAt: null,
  ...extra
})

describe("verdictOf", () => {
  it("says running, or who won and whether the variant was promoted", () => {
    expect(verdictOf(experiment())).toBe("running")
    expect(verdictOf(experiment({ status: "concluded", winner: "variant", promoted: true, reason: "lift 0.3" })))
      .toBe("variant won, variant promoted (lift 0.3)")
    expect(verdictOf(experiment({ status: "concluded", winner: "control" }))).toBe("control won")
  })
})

describe("Evals", () => {
  it("shows each section's empty state", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ items: [] })))
    render(() => <Evals client={makeClient("lt_k")} />)
    await screen.findByText("No eval suites yet. Save one with POST /v1/eval-suites or lantern eval.")
    await screen.findByText("No experiments yet. Start one with POST /v1/experiments.")
    await screen.findByText("No baselines yet: set one with POST /v1/eval-baselines.")
  })

  it("reads an eval run again as its cases finish, until the finished frame", async () => {
    let push: ((f: string) => void) | undefined
    let close: (() => void) | undefined
    let done = 0
    const encoder = new TextEncoder()
    const view = () => ({
      id: "evr_1",
      suiteId: "evs_1",
      suiteVersion: 1,
      agentName: "calc",
      agentVersion: 1,
      branch: null,
      commitSha: null,
      status: done === 2 ? "finished" : "running",
      score: done === 2 ? 0.5 : null,
      passed: done === 2 ? false : null,
      casesTotal: 2,
      casesPassed: done === 2 ? 1 : 0,
      casesDone: done,
      cases: [],
      baselineScore: null,
      baselineRunId: null,
      regressed: false,
      costUsd: 0,
      createdAt: "2026-12-03T06:00:00.000Z",
      finishedAt: null
    })
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        if (url.endsWith("/stream")) {
          return new Response(
            new ReadableStream<Uint8Array>({
              start(c) {
                push = (f) => c.enqueue(encoder.encode(f))
                close = () => c.close()
              }
            }),
            { headers: { "content-type": "text/event-stream" } }
          )
        }
        return Response.json(view())
      })
    )
    const { container } = render(() => <EvalRun client={makeClient("lt_k")} id="evr_1" />)
    await screen.findByText("0 of 2 cases, 0 passed", { exact: false })
    await vi.waitFor(() => expect(push).toBeDefined())
    done = 2
    push!(Sse.encode({ event: "finished", data: "{}" }))
    close!()
    await vi.waitFor(() =>
      expect(container.querySelector("[data-eval-verdict]")!.getAttribute("data-eval-verdict")).toBe("failed")
    )
    expect(container.querySelector("[data-score]")!.textContent).toBe("50.0%")
  })
})
