// The eval actor's pure logic (ADR 0047), two kinds of instance on the eval stream: an agent's book (its suites,
// upserted by name with a new version when they change, and its baselines per suite and branch) and an eval run
// (started once, each case recorded once, finished once). Replays and retried commands change nothing.
import type { Case, EvalEvent } from "../../schema/Eval.ts"
import { EvalSuiteNotFound } from "../../schema/Eval.ts"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"

// ---- the book ----

export interface Suite {
  readonly suiteId: string
  readonly name: string
  readonly version: number
  readonly description: string
  readonly tolerance: number
  readonly cases: ReadonlyArray<Case>
  readonly digest: string
  readonly deleted: boolean
}

export interface Baseline {
  readonly suiteId: string
  readonly branch: string
  readonly evalRunId: string
  readonly score: number
}

export interface Book {
  readonly suites: Readonly<Record<string, Suite>>
  /** By `<suiteId> <branch>`. */
  readonly baselines: Readonly<Record<string, Baseline>>
}

export type BookCommand =
  | {
    readonly _tag: "SaveSuite"
    readonly suiteId: string
    readonly agentName: string
    readonly name: string
    readonly description: string
    readonly tolerance: number
    readonly cases: ReadonlyArray<Case>
    readonly digest: string
  }
  | { readonly _tag: "DeleteSuite"; readonly suiteId: string }
  | {
    readonly _tag: "GiveFeedback"
    readonly runId: string
    readonly score: number
    readonly comment: string | null
    readonly preferredOutput?: unknown
    readonly source: string
  }
  | {
    readonly _tag: "SetBaseline"
    readonly suiteId: string
    readonly branch: string
    readonly evalRunId: string
    readonly score: number
  }

export const baselineKey = (suiteId: string, branch: string) => `${suiteId} ${branch}`

/** The baseline an eval run on `branch` is compared with: the branch's own, else main's. */
export const baselineFor = (book: Book, suiteId: string, branch: string | null): Baseline | null =>
  (branch === null ? undefined : book.baselines[baselineKey(suiteId, branch)]) ??
    book.baselines[baselineKey(suiteId, "main")] ?? null

export const liveSuite = (book: Book, suiteId: string): Suite | undefined => {
  const s = book.suites[suiteId]
  return s === undefined || s.deleted ? undefined : s
}

export const decideBook = (command: BookCommand, book: Book) => {
  switch (command._tag) {
    case "SaveSuite": {
      const current = book.suites[command.suiteId]
      if (current !== undefined && !current.deleted && current.digest === command.digest) return ignore
      return accept<EvalEvent>({
        _tag: "EvalSuiteSaved",
        suiteId: command.suiteId,
        agentName: command.agentName,
        name: command.name,
        version: (current?.version ?? 0) + 1,
        description: command.description,
        tolerance: command.tolerance,
        cases: command.cases,
        digest: command.digest
      })
    }
    case "DeleteSuite":
      if (liveSuite(book, command.suiteId) === undefined) {
        return reject(new EvalSuiteNotFound({ id: command.suiteId }))
      }
      return accept<EvalEvent>({ _tag: "EvalSuiteDeleted", suiteId: command.suiteId })
    case "GiveFeedback": {
      const { _tag, ...fields } = command
      return accept<EvalEvent>({ _tag: "RunFeedbackGiven", ...fields })
    }
    case "SetBaseline": {
      if (liveSuite(book, command.suiteId) === undefined) {
        return reject(new EvalSuiteNotFound({ id: command.suiteId }))
      }
      const current = book.baselines[baselineKey(command.suiteId, command.branch)]
      if (current?.evalRunId === command.evalRunId) return ignore
      return accept<EvalEvent>({
        _tag: "EvalBaselineSet",
        suiteId: command.suiteId,
        branch: command.branch,
        evalRunId: command.evalRunId,
        score: command.score
      })
    }
  }
}

export const evolveBook = (book: Book, e: EvalEvent): Book => {
  switch (e._tag) {
    case "EvalSuiteSaved":
      return {
        ...book,
        suites: {
          ...book.suites,
          [e.suiteId]: {
            suiteId: e.suiteId,
            name: e.name,
            version: e.version,
            description: e.description,
            tolerance: e.tolerance,
            cases: e.cases,
            digest: e.digest,
            deleted: false
          }
        }
      }
    case "EvalSuiteDeleted": {
      const s = book.suites[e.suiteId]
      return s === undefined ? book : { ...book, suites: { ...book.suites, [e.suiteId]: { ...s, deleted: true } } }
    }
    case "EvalBaselineSet":
      return {
        ...book,
        baselines: {
          ...book.baselines,
          [baselineKey(e.suiteId, e.branch)]: {
            suiteId: e.suiteId,
            branch: e.branch,
            evalRunId: e.evalRunId,
            score: e.score
          }
        }
      }
    default:
      return book
  }
}

export type BookError = EvalSuiteNotFound

export const book: Decider<Book, BookCommand, EvalEvent, BookError> = {
  initialState: { suites: {}, baselines: {} },
  decide: decideBook,
  evolve: evolveBook,
  snapshot: { version: 1 }
}

// ---- an eval run ----

type Started = Extract<EvalEvent, { _tag: "EvalRunStarted" }>
type CaseFinished = Extract<EvalEvent, { _tag: "EvalCaseFinished" }>
type Finished = Extract<EvalEvent, { _tag: "EvalRunFinished" }>

export interface EvalRun {
  readonly started: Started | null
  readonly cases: Readonly<Record<number, CaseFinished["result"]>>
  readonly finished: Finished | null
}

export type RunCommand =
  | { readonly _tag: "StartEvalRun"; readonly event: Omit<Started, "_tag"> }
  | { readonly _tag: "RecordCase"; readonly index: number; readonly result: CaseFinished["result"] }
  | { readonly _tag: "FinishEvalRun"; readonly event: Omit<Finished, "_tag"> }

export const decideRun = (command: RunCommand, run: EvalRun) => {
  switch (command._tag) {
    case "StartEvalRun":
      return run.started !== null ? ignore : accept<EvalEvent>({ _tag: "EvalRunStarted", ...command.event })
    case "RecordCase":
      return run.started === null || run.finished !== null || run.cases[command.index] !== undefined
        ? ignore
        : accept<EvalEvent>({ _tag: "EvalCaseFinished", index: command.index, result: command.result })
    case "FinishEvalRun":
      return run.started === null || run.finished !== null
        ? ignore
        : accept<EvalEvent>({ _tag: "EvalRunFinished", ...command.event })
  }
}

export const evolveRun = (run: EvalRun, e: EvalEvent): EvalRun => {
  switch (e._tag) {
    case "EvalRunStarted":
      return { ...run, started: e }
    case "EvalCaseFinished":
      return { ...run, cases: { ...run.cases, [e.index]: e.result } }
    case "EvalRunFinished":
      return { ...run, finished: e }
    default:
      return run
  }
}

export const run: Decider<EvalRun, RunCommand, EvalEvent, never> = {
  initialState: { started: null, cases: {}, finished: null },
  decide: decideRun,
  evolve: evolveRun
}
