import { describe, expect, it } from "vitest"
import { machineCpu, parseMachineCpu } from "./Hosts.ts"
import { cpuCeiling, cpuCeilingLine, type Throughput } from "./RunBatch.ts"

describe("parseMachineCpu", () => {
  it("counts user, nice, system, irq, softirq and steal as busy, and idle and iowait only in the whole", () => {
    const stat = [
      "cpu  100 5 40 800 30 2 3 1 7 0",
      "cpu0 50 2 20 400 15 1 2 0 0 0",
      "intr 12345"
    ].join("\n")
    // busy 100+5+40+2+3+1 = 151 ticks, all 151+800+30 = 981 ticks (guest is inside user already)
    expect(parseMachineCpu(stat)).toEqual({ busyMs: 1510, allMs: 9810 })
  })

  it("is null without the machine's line or with a field missing", () => {
    expect(parseMachineCpu("cpu0 1 2 3 4 5 6 7 8")).toBeNull()
    expect(parseMachineCpu("cpu  1 2 3 4 5 6")).toBeNull()
    expect(parseMachineCpu("cpu  1 2 three 4 5 6 7 8")).toBeNull()
  })

  it("reads this machine's /proc/stat, whose busy time only grows", () => {
    const a = machineCpu()
    let x = 0
    for (let i = 0; i < 5e6; i++) x += Math.sqrt(i)
    const b = machineCpu()
    expect(x).toBeGreaterThan(0)
    expect(a.busyMs).toBeGreaterThan(0)
    expect(b.busyMs).toBeGreaterThanOrEqual(a.busyMs)
    expect(b.allMs).toBeGreaterThanOrEqual(b.busyMs)
  })
})

const batch = (machineMs: number, engineMs: number, cores: number, busy: number): Throughput => ({
  runs: 600,
  succeeded: 600,
  wallMs: 2500,
  runsPerSecond: 240,
  latencyMs: [],
  cpuMsPerRun: { engine: engineMs, server: 1.2, client: 0.85 },
  machine: { cpuMsPerRun: machineMs, busy, cores },
  inMsgsPerRun: 11,
  outMsgsPerRun: 25,
  jsApiPerRun: 0,
  writesPerRun: 10
})

describe("cpuCeiling", () => {
  it("divides the cores' time by the machine's cost per run, and leaves serve the goal's share less the others'", () => {
    // 2 cores at 8 ms a run: 250 runs/s; 400/s gives 5 ms a run, of which the others take 8 - 5 = 3
    const c = cpuCeiling(batch(8, 5, 2, 0.95), 400)
    expect(c.runsPerSecond).toBeCloseTo(250)
    expect(c.serveRoomMs).toBeCloseTo(2)
  })

  it("says so when the rest of the machine alone exceeds the goal's share", () => {
    const c = cpuCeiling(batch(12, 5, 2, 1), 400)
    expect(c.serveRoomMs).toBeCloseTo(-2)
    expect(cpuCeilingLine(batch(12, 5, 2, 1), 400, "run")).toContain("400/s would leave serve -2.00 ms")
  })

  it("prints the figures it computed", () => {
    const line = cpuCeilingLine(batch(8, 5, 2, 0.95), 400, "workflow")
    expect(line).toContain("8.00 ms of CPU per workflow (95% of its 2 cores busy)")
    expect(line).toContain("at most 250 workflows/s")
    expect(line).toContain("leave serve 2.00 ms of CPU per workflow (it used 5.00)")
  })
})
