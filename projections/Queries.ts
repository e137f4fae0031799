// The reads the HTTP edge serves from the projections: agents, their versions, runs (paged newest first)
// and a run's steps. Every query runs as the edge's role with the tenant set (row-level security) and is also
// filtered by tenant (defence in depth); times come back as ISO-8601 strings in UTC.
import { Effect, Schema } from "effect"
import {
  type AgentResponse,
  type AgentVersionResponse,
  PROBE_AGENT,
  type RunResponse,
  type RunStatus
} from "../schema/Api.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import { ErrorInfo, StepRequest, StepResult } from "../schema/Events.ts"
import { queryAs, type Sql } from "./Sql.ts"

/** A run's step attempt as the API shows it. */
export const StepResponse = Schema.Struct({
  runId: Schema.String,
  stepId: Schema.String,
  attempt: Schema.Int,
  kind: Schema.Literals(["model", "tool", "sleep", "approval", "agent", "code", "timer"]),
  status: Schema.Literals(["started", "completed", "failed"]),
  request: Schema.NullOr(StepRequest),
  result: Schema.NullOr(StepResult),
  error: Schema.NullOr(ErrorInfo),
  tokensIn: Schema.Int,
  tokensOut: Schema.Int,
  costUsd: Schema.Number,
  startedAt: Schema.NullOr(Schema.String),
  finishedAt: Schema.NullOr(Schema.String)
})
export type StepResponse = typeof StepResponse.Type

export interface RunListOptions {
  readonly status?: RunStatus
  readonly agentName?: string
  /** 1 to 200; 50 when absent. */
  readonly limit?: number
  /** The previous page's `nextCursor` (or, as before issue 10, the last run id of the previous page). */
  readonly cursor?: string
}

export interface RunPage {
  readonly items: ReadonlyArray<RunResponse>
  /** The cursor of the next page; null on the last page. */
  readonly nextCursor: string | null
}

export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 200

/** A timestamptz column as `2026-11-21T05:00:00.000Z`, the same text from every driver and time zone. */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

const AGENT_COLUMNS = `name, description, latest_version as "latestVersion", digest, spec,
  ${iso("created_at")} as "createdAt", ${iso("updated_at")} as "updatedAt"`

const VERSION_COLUMNS = `name, version, digest, description, spec, ${iso("created_at")} as "createdAt"`

const RUN_COLUMNS = `id, status, agent_name as "agentName", agent_version as "agentVersion", input, output, error,
  steps, tokens_in as "tokensIn", tokens_out as "tokensOut", cost_usd as "costUsd",
  ${iso("created_at")} as "createdAt", ${iso("updated_at")} as "updatedAt", ${iso("finished_at")} as "finishedAt",
  (select json_build_object('stepId', w.step_id,
      'kind', case when w.status = 'failed' then 'retry' when w.kind = 'timer' then 'sleep' else w.kind end,
      'until', ${iso("w.wake_at")}) from steps w
    where w.tenant_id = runs.tenant_id and w.run_id = runs.id and runs.status = 'running'
      and ((w.status = 'started' and w.kind in ('sleep', 'approval', 'agent', 'timer'))
        -- a failed attempt waiting for its retry, until the next attempt starts
        or (w.status = 'failed' and w.wake_at is not null and not exists (select 1 from steps n
          where n.tenant_id = w.tenant_id and n.run_id = w.run_id and n.step_id = w.step_id and n.attempt > w.attempt)))
    order by w.seq limit 1) as waiting,
  case when experiment_id is null then null
    else json_build_object('id', experiment_id, 'arm', experiment_arm) end as experiment,
  eval_run_id as "evalRunId"`

const STEP_COLUMNS = `run_id as "runId", step_id as "stepId", attempt, kind, status, request, result, error,
  tokens_in as "tokensIn", tokens_out as "tokensOut", cost_usd as "costUsd",
  ${iso("started_at")} as "startedAt", ${iso("finished_at")} as "finishedAt"`

/** A read for `params[0]`, the tenant: the statement's own filter and the database's policy both apply. */
const query = <T>(
  text: string,
  params: readonly [string, ...Array<unknown>]
): Effect.Effect<ReadonlyArray<T>, DatabaseUnavailable, Sql> => queryAs<T>(params[0], text, params)

/** jsonb holding JSON null and SQL NULL both read as null; a run's input may be any JSON. */
const runOf = (row: RunResponse): RunResponse => ({
  ...row,
  input: row.input ?? null,
  output: row.output ?? null,
  waiting: row.waiting ?? null
})

export const listAgents = (tenant: string): Effect.Effect<ReadonlyArray<AgentResponse>, DatabaseUnavailable, Sql> =>
  query<AgentResponse>(`select ${AGENT_COLUMNS} from agents where tenant_id = $1 order by name`, [tenant])

export const getAgent = (tenant: string, name: string): Effect.Effect<AgentResponse | null, DatabaseUnavailable, Sql> =>
  Effect.map(
    query<AgentResponse>(`select ${AGENT_COLUMNS} from agents where tenant_id = $1 and name = $2`, [tenant, name]),
    (rows) => rows[0] ?? null
  )

/** Every version of an agent, oldest first; empty when the agent does not exist. */
export const listVersions = (
  tenant: string,
  name: string
): Effect.Effect<ReadonlyArray<AgentVersionResponse>, DatabaseUnavailable, Sql> =>
  query<AgentVersionResponse>(
    `select ${VERSION_COLUMNS} from agent_versions where tenant_id = $1 and name = $2 order by version`,
    [tenant, name]
  )

export const getRun = (tenant: string, id: string): Effect.Effect<RunResponse | null, DatabaseUnavailable, Sql> =>
  Effect.map(
    query<RunResponse>(`select ${RUN_COLUMNS} from runs where tenant_id = $1 and id = $2`, [tenant, id]),
    (rows) => (rows[0] === undefined ? null : runOf(rows[0]))
  )

/**
 * A run with the stream sequence of the last event its row reflects, so a reader can tell whether the
 * projection has caught up with the journal.
 */
export const getRunAt = (
  tenant: string,
  id: string
): Effect.Effect<{ readonly run: RunResponse; readonly lastSeq: number } | null, DatabaseUnavailable, Sql> =>
  Effect.map(
    query<RunResponse & { lastSeq: number }>(
      `select ${RUN_COLUMNS}, last_seq as "lastSeq" from runs where tenant_id = $1 and id = $2`,
      [tenant, id]
    ),
    (rows) => {
      const row = rows[0]
      if (row === undefined) return null
      const { lastSeq, ...run } = row
      return { run: runOf(run), lastSeq: Number(lastSeq) }
    }
  )

/**
 * A page's cursor: `<µs since the epoch>.<run id>` of its last run, the (created_at, id) the next page continues
 * below. A bare run id (the cursor before issue 10) is read as that run's (created_at, id).
 */
const CURSOR = /^(?:([0-9]{1,17})\.)?(run_[0-9a-z]{26})$/u

/**
 * A page of runs, newest first: by creation time, ties by id (child runs' ids are not time-ordered, so ids alone
 * would not do), optionally by status and agent; without an agent, `lantern doctor`'s probe runs are left out.
 * Pass the page's `nextCursor` as `cursor` for the next one.
 */
export const listRuns = (
  tenant: string,
  options: RunListOptions = {}
): Effect.Effect<RunPage, DatabaseUnavailable, Sql> => {
  const limit = Math.min(MAX_LIMIT, Math.max(1, Math.floor(options.limit ?? DEFAULT_LIMIT)))
  const params: [string, ...Array<unknown>] = [tenant]
  const where = [`tenant_id = $1`]
  const filter = (column: string, op: string, value: string | undefined) => {
    if (value === undefined) return
    params.push(value)
    where.push(`${column} ${op} $${params.length}`)
  }
  filter("status", "=", options.status)
  filter("agent_name", "=", options.agentName)
  // `lantern doctor`'s probe runs are shown only to whoever asks for them by their agent's name
  if (options.agentName === undefined) filter("agent_name", "<>", PROBE_AGENT)
  if (options.cursor !== undefined) {
    const cursor = CURSOR.exec(options.cursor)
    // the edge lets only the pattern through; anything else continues nowhere
    if (cursor === null) return Effect.succeed({ items: [], nextCursor: null })
    if (cursor[1] === undefined) {
      params.push(cursor[2])
      where.push(
        `(created_at, id) < (select c.created_at, c.id from runs c where c.tenant_id = $1 and c.id = $${params.length})`
      )
    } else {
      params.push(cursor[1], cursor[2])
      where.push(
        `(created_at, id) < (timestamptz 'epoch' + $${
          params.length - 1
        }::bigint * interval '1 microsecond', $${params.length})`
      )
    }
  }
  params.push(limit + 1)
  return Effect.map(
    query<RunResponse & { cursorAt: string }>(
      `select ${RUN_COLUMNS}, ((extract(epoch from created_at) * 1000000)::bigint)::text as "cursorAt"
        from runs where ${where.join(" and ")} order by created_at desc, id desc limit $${params.length}`,
      params
    ),
    (rows) => {
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return {
        items: page.map(({ cursorAt: _, ...run }) => runOf(run)),
        nextCursor: rows.length > limit && last !== undefined ? `${last.cursorAt}.${last.id}` : null
      }
    }
  )
}

/** A run's step attempts in the order they started; empty when the run does not exist. */
export const listSteps = (
  tenant: string,
  runId: string
): Effect.Effect<ReadonlyArray<StepResponse>, DatabaseUnavailable, Sql> =>
  query<StepResponse>(`select ${STEP_COLUMNS} from steps where tenant_id = $1 and run_id = $2 order by seq`, [
    tenant,
    runId
  ])

/** A completed run as the cost forecast learns from it. */
export interface CostSample {
  readonly id: string
  readonly input: unknown
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

/** The latest `limit` succeeded runs of one agent version, newest first (runs_by_agent serves the order). */
export const succeededRuns = (
  tenant: string,
  agentName: string,
  agentVersion: number,
  limit: number
): Effect.Effect<ReadonlyArray<CostSample>, DatabaseUnavailable, Sql> =>
  Effect.map(
    query<CostSample>(
      `select id, input, tokens_in as "tokensIn", tokens_out as "tokensOut", cost_usd as "costUsd" from runs
        where tenant_id = $1 and agent_name = $2 and agent_version = $3 and status = 'succeeded'
        order by id desc limit $4`,
      [tenant, agentName, agentVersion, limit]
    ),
    (rows) => rows.map((r) => ({ ...r, input: r.input ?? null }))
  )

/** A run an A/B experiment chose the version of (ADR 0058): its arm, how it stands, what it cost. */
export interface ExperimentRun {
  readonly id: string
  readonly arm: "control" | "variant"
  readonly status: string
  readonly costUsd: number
}

/** Every run an experiment assigned an arm, eval traffic left out (an eval run pins its version anyway). */
export const experimentRuns = (
  tenant: string,
  experimentId: string
): Effect.Effect<ReadonlyArray<ExperimentRun>, DatabaseUnavailable, Sql> =>
  Effect.map(
    query<ExperimentRun>(
      `select id, experiment_arm as arm, status, cost_usd::float8 as "costUsd" from runs
        where tenant_id = $1 and experiment_id = $2 and eval_run_id is null`,
      [tenant, experimentId]
    ),
    (rows) => rows.map((r) => ({ ...r, costUsd: Number(r.costUsd) }))
  )
