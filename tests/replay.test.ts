// Replay safety: every journal recorded under tests/fixtures/journals/ is decoded, folded through the current
// deciders and must summarise exactly as it did with the code that recorded it (its .expected.json).
//
// Rules (also in tests/fixtures/journals/README.md):
// - Fixtures are never edited or re-recorded. A failure here means the change breaks journals already stored
//   in production: fix the change, not the fixture.
// - A new event shape adds a new version to schema/Events.ts `registry` (with an upcast), it never edits an
//   existing (type, version): old journals must keep decoding and folding the same way.
// - Re-record only to ADD scenarios: `node --import tsx scripts/record-journals.ts` writes only the journals
//   whose files are missing. The summary (tests/support/Replay.ts) holds behaviour only, so additive changes pass.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as Replay from "./support/Replay.ts"

const DIR = join(import.meta.dirname, "fixtures/journals")
const files = readdirSync(DIR)
const journals = files.filter((f) => f.endsWith(".jsonl")).sort()
const expectedOf = (journal: string) => journal.replace(/\.jsonl$/, ".expected.json")

describe("recorded journals", () => {
  it("are present, each with its expected summary and no summary without a journal", () => {
    expect(journals.length).toBeGreaterThan(0)
    expect(journals.filter((j) => !files.includes(expectedOf(j))), "journals without .expected.json").toEqual([])
    const orphans = files.filter((f) =>
      f.endsWith(".expected.json") && !journals.includes(f.replace(/\.expected\.json$/, ".jsonl"))
    )
    expect(orphans, ".expected.json without a journal").toEqual([])
  })

  describe.each(journals)("%s", (journal) => {
    const lines = Replay.parseJsonl(readFileSync(join(DIR, journal), "utf8"))

    it("is one actor's journal in ascending stream order", () => {
      expect(lines.length).toBeGreaterThan(0)
      const subject = lines[0]!.subject
      expect(() => Replay.actorTypeOf(subject)).not.toThrow()
      for (const [i, line] of lines.entries()) {
        expect(line.subject).toBe(subject)
        if (i > 0) expect(line.seq, `seq at line ${i + 1}`).toBeGreaterThan(lines[i - 1]!.seq)
      }
    })

    it("replays through the current code to the recorded summary", () => {
      const path = join(DIR, expectedOf(journal))
      expect(existsSync(path), `${expectedOf(journal)} is missing`).toBe(true)
      const expected = JSON.parse(readFileSync(path, "utf8")) as Replay.Summary
      const actual = Replay.summarize(lines)
      if ("costUsd" in expected && "costUsd" in actual) {
        // a sum of floats: the same to the micro-cent, whatever order or representation the fold uses
        expect(actual.costUsd).toBeCloseTo(expected.costUsd, 12)
        expect({ ...actual, costUsd: 0 }).toEqual({ ...expected, costUsd: 0 })
      } else {
        expect(actual).toEqual(expected)
      }
    })
  })
})
