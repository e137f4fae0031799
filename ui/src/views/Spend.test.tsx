// The caps form's reading of its fields: empty fields are caps left out, each field is checked as the API checks it,
// and the first bad one is named.
import { describe, expect, it } from "vitest"
import { limitsFrom } from "./Spend.tsx"

describe("limitsFrom", () => {
  it("reads the filled fields as caps and leaves the empty ones out", () => {
    expect(limitsFrom({ maxCostUsdPerDay: " 5.5 ", maxRunsPerDay: "1000", maxTokensPerRun: "" }, true)).toEqual({
      limits: { hardFail: true, maxCostUsdPerDay: 5.5, maxRunsPerDay: 1000 }
    })
    expect(limitsFrom({}, false)).toEqual({ limits: { hardFail: false } })
  })

  it("names the first field that is not a cap", () => {
    expect(limitsFrom({ maxCostUsdPerRun: "-1" }, true)).toMatchObject({ field: "maxCostUsdPerRun" })
    expect(limitsFrom({ maxCostUsdPerRun: "1", maxRunsPerDay: "2.5" }, true)).toMatchObject({
      field: "maxRunsPerDay",
      message: expect.stringContaining("Runs per day")
    })
    expect(limitsFrom({ maxToolCallsPerRun: "ten" }, true)).toMatchObject({ field: "maxToolCallsPerRun" })
    expect(limitsFrom({ maxCostUsdPerDay: "2e9" }, true)).toMatchObject({ field: "maxCostUsdPerDay" })
  })
})
