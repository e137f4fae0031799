// How stored events change the read models, inside the projector's batch transaction: `batch` writes a whole
// batch in a few multi-row statements, `event` one event at a time (the reference, and the fallback that finds
// a dead letter); both write identical rows. Rows take their times from the event's `at` only, so replaying a
// journal writes identical rows. The projector writes every tenant's rows as the connecting user, whose system
// role passes row-level security.
import { Effect } from "effect"
import type * as Envelope from "../schema/Envelope.ts"
import * as Events from "../schema/Events.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import type { SqlPort } from "./Sql.ts"
import * as Suffixes from "./Suffixes.ts"

/** A JSON value as the text of a `$n::jsonb` parameter; `undefined` becomes JSON null. */
const json = (value: unknown): string => JSON.stringify(value === undefined ? null : value)

/** Run rows move forward only: an event at or below the run's last sequence was already folded in. */
const RUN_GUARD = `tenant_id = $1 and id = $2 and last_seq < $3`

const touchRun = (tx: SqlPort, tenant: string, runId: string, seq: number, at: string) =>
  tx.query(`update runs set updated_at = $4::timestamptz, last_seq = $3 where ${RUN_GUARD}`, [tenant, runId, seq, at])

/** What step completions add to their run's row: steps, tokens in and out, and the exact cost as `numeric` text. */
const countsOf = (completions: ReadonlyArray<Events.StepCompleted>) =>
  [
    completions.length,
    completions.reduce((n, c) => n + c.tokensIn, 0),
    completions.reduce((n, c) => n + c.tokensOut, 0),
    Suffixes.decimalSum(completions.map((c) => c.costUsd))
  ] as const

/** The run's end, with the step completions journaled with it (a RunSucceeded's, ADR 0077) counted under one guard. */
const finishRun = (
  tx: SqlPort,
  s: Envelope.Stored,
  status: "succeeded" | "failed" | "canceled",
  output: unknown,
  error: unknown,
  completions: ReadonlyArray<Events.StepCompleted> = []
) =>
  tx.query(
    `update runs set status = $4, output = $5::jsonb, error = $6::jsonb,
       finished_at = $7::timestamptz, updated_at = $7::timestamptz, last_seq = $3, steps = steps + $8,
       tokens_in = tokens_in + $9, tokens_out = tokens_out + $10, cost_usd = cost_usd + $11::numeric
     where ${RUN_GUARD}`,
    [
      s.envelope.tenant,
      s.envelope.actor.id,
      s.seq,
      status,
      output === null ? null : json(output),
      error === null ? null : json(error),
      s.envelope.at,
      ...countsOf(completions)
    ]
  )

/** A step's row completed; a local step journaled once (its request on its completion) has no row yet: it starts here. */
const completeStep = (tx: SqlPort, tenant: string, runId: string, seq: number, at: string, e: Events.StepCompleted) =>
  Effect.andThen(
    e.request === undefined ? Effect.void : Effect.asVoid(tx.query(
      `insert into steps (tenant_id, run_id, step_id, attempt, kind, status, request, started_at, seq, wake_at)
       values ($1, $2, $3, $4, $5, 'started', $6::jsonb, $7::timestamptz, $8, null)
       on conflict (tenant_id, run_id, step_id, attempt) do nothing`,
      [tenant, runId, e.stepId, e.attempt, e.request._tag, json(e.request), at, seq]
    )),
    tx.query(
      `update steps set status = 'completed', result = $5::jsonb, error = null, tokens_in = $6, tokens_out = $7,
         cost_usd = $8::numeric, finished_at = $9::timestamptz
       where tenant_id = $1 and run_id = $2 and step_id = $3 and attempt = $4`,
      [tenant, runId, e.stepId, e.attempt, json(e.result), e.tokensIn, e.tokensOut, e.costUsd, at]
    )
  )

/**
 * Applies one event to the read models. Agent events touch agents and agent_versions; run events runs and steps;
 * audit events audit_events.
 */
export const event = (tx: SqlPort, s: Envelope.Stored): Effect.Effect<void, DatabaseUnavailable> => {
  const { envelope, event: e, seq } = s
  const tenant = envelope.tenant
  const at = envelope.at
  const runId = envelope.actor.id
  switch (e._tag) {
    case "AgentCreated":
    case "AgentVersionPublished":
      return Effect.asVoid(Effect.andThen(
        tx.query(
          `insert into agents (tenant_id, name, description, latest_version, digest, spec, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6::jsonb, $7::timestamptz, $7::timestamptz)
           on conflict (tenant_id, name) do update set
             description = excluded.description, latest_version = excluded.latest_version,
             digest = excluded.digest, spec = excluded.spec, updated_at = excluded.updated_at
           where agents.latest_version <= excluded.latest_version`,
          [tenant, e.name, e.description, e.version, e.digest, json(e.spec), at]
        ),
        tx.query(
          `insert into agent_versions (tenant_id, name, version, digest, description, spec, created_at)
           values ($1, $2, $3, $4, $5, $6::jsonb, $7::timestamptz)
           on conflict (tenant_id, name, version) do nothing`,
          [tenant, e.name, e.version, e.digest, e.description, json(e.spec), at]
        )
      ))
    case "RunStarted":
      return Effect.asVoid(tx.query(
        `insert into runs (tenant_id, id, agent_name, agent_version, status, input, created_at, updated_at, last_seq,
           eval_run_id, experiment_id, experiment_arm)
         values ($1, $2, $3, $4, 'running', $5::jsonb, $6::timestamptz, $6::timestamptz, $7, $8, $9, $10)
         on conflict (tenant_id, id) do nothing`,
        [
          tenant,
          runId,
          e.agentName,
          e.agentVersion,
          json(e.input),
          at,
          seq,
          e.evalRunId ?? null,
          e.experiment?.id ?? null,
          e.experiment?.arm ?? null
        ]
      ))
    case "StepStarted":
      return Effect.asVoid(Effect.andThen(
        tx.query(
          `insert into steps (tenant_id, run_id, step_id, attempt, kind, status, request, started_at, seq, wake_at)
           values ($1, $2, $3, $4, $5, 'started', $6::jsonb, $7::timestamptz, $8, $9::timestamptz)
           on conflict (tenant_id, run_id, step_id, attempt) do nothing`,
          [
            tenant,
            runId,
            e.stepId,
            e.attempt,
            e.request._tag,
            json(e.request),
            at,
            seq,
            e.wakeAt === undefined ? null : new Date(e.wakeAt).toISOString()
          ]
        ),
        touchRun(tx, tenant, runId, seq, at)
      ))
    case "StepCompleted":
    case "StepsCompleted": {
      // a StepsCompleted (ADR 0067) is its steps' completions, in order, and counts as one event of the run
      const completions = Events.expand(e)
      return Effect.asVoid(Effect.andThen(
        Effect.forEach(completions, (c) => completeStep(tx, tenant, runId, seq, at, c), { discard: true }),
        tx.query(
          `update runs set steps = steps + $4, tokens_in = tokens_in + $5, tokens_out = tokens_out + $6,
             cost_usd = cost_usd + $7::numeric, updated_at = $8::timestamptz, last_seq = $3
           where ${RUN_GUARD}`,
          [
            tenant,
            runId,
            seq,
            ...countsOf(completions),
            at
          ]
        )
      ))
    }
    case "StepFailed":
      return Effect.asVoid(Effect.andThen(
        tx.query(
          `update steps set status = 'failed', error = $5::jsonb, finished_at = $6::timestamptz, wake_at = $7::timestamptz
           where tenant_id = $1 and run_id = $2 and step_id = $3 and attempt = $4`,
          [
            tenant,
            runId,
            e.stepId,
            e.attempt,
            json(e.error),
            at,
            e.retryAt === undefined ? null : new Date(e.retryAt).toISOString()
          ]
        ),
        touchRun(tx, tenant, runId, seq, at)
      ))
    case "RunSucceeded": {
      // with the completion of the step whose answer ended the run (ADR 0077): its row completed first
      const completions = Events.completionsOf(e)
      return Effect.asVoid(Effect.andThen(
        Effect.forEach(completions, (c) => completeStep(tx, tenant, runId, seq, at, c), { discard: true }),
        finishRun(tx, s, "succeeded", e.output ?? null, null, completions)
      ))
    }
    case "RunFailed":
      return Effect.asVoid(finishRun(tx, s, "failed", null, e.error))
    case "RunCanceled":
      // The API's error field says why a run ended without an output; a cancellation is reported there too.
      return Effect.asVoid(finishRun(tx, s, "canceled", null, { code: "canceled", message: e.reason }))
    case "AuditRecorded":
      // one subject per entry: the entry's id is its journal's id, and a replay finds the row there
      return Effect.asVoid(tx.query(
        `insert into audit_events (tenant_id, id, seq, at, action, actor, target, outcome, detail)
         values ($1, $2, $3, $4::timestamptz, $5, $6, $7, $8, $9::jsonb)
         on conflict (tenant_id, id) do nothing`,
        [tenant, envelope.actor.id, seq, at, e.action, e.actor, e.target, e.outcome, json(e.detail)]
      ))
    default:
      // budget journals are read by the budget actor itself, not projected here
      return Effect.void
  }
}

type RunEvent = Extract<
  Envelope.Stored["event"],
  {
    _tag:
      | "RunStarted"
      | "StepStarted"
      | "StepCompleted"
      | "StepsCompleted"
      | "StepFailed"
      | "RunSucceeded"
      | "RunFailed"
      | "RunCanceled"
  }
>
const RUN_EVENTS: ReadonlySet<string> = new Set([
  "RunStarted",
  "StepStarted",
  "StepCompleted",
  "StepsCompleted",
  "StepFailed",
  "RunSucceeded",
  "RunFailed",
  "RunCanceled"
])
const isRunEvent = (s: Envelope.Stored): s is Envelope.Stored & { readonly event: RunEvent } =>
  RUN_EVENTS.has(s.event._tag)

/** Rows as one `$1::jsonb` array: each statement of a batch is one round trip with one parameter. */
const rowsOf = (rows: ReadonlyArray<object>) => json(rows)

/**
 * The rows of `$1` as `r(x)`, with their count in `$n`: the planner takes the `limit` as the row estimate (it
 * guesses 100 rows for any set-returning function), so a batch of a few events joins its rows by primary key
 * instead of hashing a scan of the whole table, which it would choose for 100 rows while the table is small.
 */
const elements = (n: number) => `(select x from jsonb_array_elements($1::jsonb) as r(x) limit $${n}) as r`

/**
 * Whether every step attempt in the batch follows its journal's shape: started at most once, then completed
 * or failed at most once. Only then can the batch write its step rows as one insert and one update each; a
 * batch that strays (which no run actor writes) is folded event by event.
 */
const stepsInShape = (events: ReadonlyArray<Envelope.Stored & { readonly event: RunEvent }>): boolean => {
  const seen = new Map<string, { started: boolean; ended: boolean }>()
  for (const { envelope, event } of events)
    for (const e of Events.expand(event)) {
      if (e._tag !== "StepStarted" && e._tag !== "StepCompleted" && e._tag !== "StepFailed") continue
      const key = JSON.stringify([envelope.tenant, envelope.actor.id, e.stepId, e.attempt])
      const step = seen.get(key) ?? { started: false, ended: false }
      if (e._tag === "StepStarted" || (e._tag === "StepCompleted" && e.request !== undefined)) {
        if (step.started || step.ended) return false
        step.started = true
        step.ended = e._tag === "StepCompleted"
      } else {
        if (step.ended) return false
        step.ended = true
      }
      seen.set(key, step)
    }
  return true
}

/**
 * Run events of a batch (in stream order) as at most five statements, writing exactly what `event` would one
 * by one: runs inserted (the first RunStarted of each), steps inserted (completed already when their completion
 * is in the batch too), completions of earlier steps, failures, then every other run event folded into one
 * update per run. That update applies, as `RUN_GUARD` does event by event, only the events past the run's
 * `last_seq` as it stands after the inserts (a run's events after its last applied one always pass the guard, so
 * that set is a suffix of its events: Suffixes.ts folds each in memory and the run's `last_seq` picks one).
 */
const runBatch = (tx: SqlPort, events: ReadonlyArray<Envelope.Stored & { readonly event: RunEvent }>) =>
  Effect.gen(function*() {
    const started = new Map<string, Record<string, unknown>>()
    // step rows inserted by this batch, by step attempt: a completion in the same batch goes into its row
    const steps = new Map<string, Record<string, unknown>>()
    const stepKey = (tenant: string, runId: string, stepId: string, attempt: number) =>
      JSON.stringify([tenant, runId, stepId, attempt])
    const completed: Array<Record<string, unknown>> = []
    const failed: Array<Record<string, unknown>> = []
    const updates: Array<Suffixes.Change> = []
    /** Step completions of one event, into the step rows; what they add to the run's row. */
    const complete = (
      base: { readonly tenant: string; readonly id: string; readonly seq: number; readonly at: string },
      completions: ReadonlyArray<Events.StepCompleted>
    ) => {
      for (const c of completions) {
        const key = stepKey(base.tenant, base.id, c.stepId, c.attempt)
        // a local step journaled once: its row is inserted completed, as a start and a completion would leave it
        if (c.request !== undefined) {
          steps.set(key, {
            ...base,
            stepId: c.stepId,
            attempt: c.attempt,
            kind: c.request._tag,
            request: c.request,
            wakeAt: null
          })
        }
        const completion = {
          result: c.result ?? null,
          tokensIn: c.tokensIn,
          tokensOut: c.tokensOut,
          costUsd: c.costUsd,
          finishedAt: base.at
        }
        // started in this batch: one row written once; started before it: an update of its row
        const row = steps.get(key)
        if (row !== undefined) steps.set(key, { ...row, completed: completion })
        else completed.push({ ...base, stepId: c.stepId, attempt: c.attempt, ...completion })
      }
      return completions.map((c) => ({ tokensIn: c.tokensIn, tokensOut: c.tokensOut, costUsd: c.costUsd }))
    }
    for (const { envelope, event: e, seq } of events) {
      const base = { tenant: envelope.tenant, id: envelope.actor.id, seq, at: envelope.at }
      switch (e._tag) {
        case "RunStarted": {
          const key = JSON.stringify([base.tenant, base.id])
          // a second RunStarted of a run inserts nothing, as `on conflict do nothing` would
          if (!started.has(key))
            started.set(key, {
              ...base,
              agentName: e.agentName,
              agentVersion: e.agentVersion,
              input: e.input ?? null,
              evalRunId: e.evalRunId ?? null,
              experimentId: e.experiment?.id ?? null,
              experimentArm: e.experiment?.arm ?? null
            })
          break
        }
        case "StepStarted":
          steps.set(stepKey(base.tenant, base.id, e.stepId, e.attempt), {
            ...base,
            stepId: e.stepId,
            attempt: e.attempt,
            kind: e.request._tag,
            request: e.request,
            wakeAt: e.wakeAt === undefined ? null : new Date(e.wakeAt).toISOString()
          })
          updates.push(base)
          break
        case "StepCompleted":
        case "StepsCompleted": {
          // a StepsCompleted (ADR 0067) is its steps' completions, in order, and one change of the run's row
          updates.push({ ...base, completed: complete(base, Events.expand(e)) })
          break
        }
        case "StepFailed":
          failed.push({
            ...base,
            stepId: e.stepId,
            attempt: e.attempt,
            error: e.error ?? null,
            retryAt: e.retryAt === undefined ? null : new Date(e.retryAt).toISOString()
          })
          updates.push(base)
          break
        case "RunSucceeded":
          // with the completion of the step whose answer ended the run (ADR 0077): one change of the run's row
          updates.push({
            ...base,
            completed: complete(base, Events.completionsOf(e)),
            ended: { status: "succeeded", output: e.output ?? null, error: null }
          })
          break
        case "RunFailed":
          updates.push({ ...base, ended: { status: "failed", output: null, error: e.error ?? null } })
          break
        case "RunCanceled":
          updates.push({
            ...base,
            ended: { status: "canceled", output: null, error: { code: "canceled", message: e.reason } }
          })
          break
      }
    }
    if (started.size > 0) {
      yield* tx.query(
        `insert into runs (tenant_id, id, agent_name, agent_version, status, input, created_at, updated_at, last_seq,
           eval_run_id, experiment_id, experiment_arm)
         select x->>'tenant', x->>'id', x->>'agentName', (x->>'agentVersion')::integer, 'running', x->'input',
           (x->>'at')::timestamptz, (x->>'at')::timestamptz, (x->>'seq')::bigint,
           x->>'evalRunId', x->>'experimentId', x->>'experimentArm'
         from jsonb_array_elements($1::jsonb) with ordinality as r(x, n) order by n
         on conflict (tenant_id, id) do nothing`,
        [rowsOf([...started.values()])]
      )
    }
    if (steps.size > 0) {
      // a row completed in this batch is inserted completed, or completes the row a replay finds (as the update
      // of `event` would); a row only started is inserted started, or left as it is
      yield* tx.query(
        `insert into steps (tenant_id, run_id, step_id, attempt, kind, status, request, started_at, seq, wake_at,
           result, error, tokens_in, tokens_out, cost_usd, finished_at)
         select x->>'tenant', x->>'id', x->>'stepId', (x->>'attempt')::integer, x->>'kind',
           case when c is null then 'started' else 'completed' end, x->'request',
           (x->>'at')::timestamptz, (x->>'seq')::bigint, (x->>'wakeAt')::timestamptz,
           c->'result', null, coalesce((c->>'tokensIn')::bigint, 0), coalesce((c->>'tokensOut')::bigint, 0),
           coalesce((c->>'costUsd')::numeric, 0), (c->>'finishedAt')::timestamptz
         from jsonb_array_elements($1::jsonb) with ordinality as r(x, n), lateral (select x->'completed' as c) k
         order by n
         on conflict (tenant_id, run_id, step_id, attempt) do update set
           status = 'completed', result = excluded.result, error = null, tokens_in = excluded.tokens_in,
           tokens_out = excluded.tokens_out, cost_usd = excluded.cost_usd, finished_at = excluded.finished_at
         where excluded.status = 'completed'`,
        [rowsOf([...steps.values()])]
      )
    }
    if (completed.length > 0) {
      yield* tx.query(
        `update steps set status = 'completed', result = x->'result', error = null,
           tokens_in = (x->>'tokensIn')::bigint, tokens_out = (x->>'tokensOut')::bigint,
           cost_usd = (x->>'costUsd')::numeric, finished_at = (x->>'finishedAt')::timestamptz
         from ${elements(2)}
         where tenant_id = x->>'tenant' and run_id = (x->>'id') collate "C" and step_id = (x->>'stepId') collate "C"
           and attempt = (x->>'attempt')::integer`,
        [rowsOf(completed), completed.length]
      )
    }
    if (failed.length > 0) {
      yield* tx.query(
        `update steps set status = 'failed', error = x->'error', finished_at = (x->>'at')::timestamptz,
           wake_at = (x->>'retryAt')::timestamptz
         from ${elements(2)}
         where tenant_id = x->>'tenant' and run_id = (x->>'id') collate "C" and step_id = (x->>'stepId') collate "C"
           and attempt = (x->>'attempt')::integer`,
        [rowsOf(failed), failed.length]
      )
    }
    if (updates.length > 0) {
      // per run, the one suffix of its events that starts past its last_seq: the events its guard lets through
      const suffixes = Suffixes.of(updates)
      yield* tx.query(
        `update runs set
           steps = runs.steps + (x->>'steps')::integer, tokens_in = runs.tokens_in + (x->>'tokensIn')::bigint,
           tokens_out = runs.tokens_out + (x->>'tokensOut')::bigint, cost_usd = runs.cost_usd + (x->>'costUsd')::numeric,
           updated_at = (x->>'at')::timestamptz, last_seq = (x->>'lastSeq')::bigint,
           status = coalesce(x->>'status', runs.status),
           output = case when x->>'status' is null then runs.output else nullif(x->'output', 'null'::jsonb) end,
           error = case when x->>'status' is null then runs.error else nullif(x->'error', 'null'::jsonb) end,
           finished_at = case when x->>'status' is null then runs.finished_at else (x->>'finishedAt')::timestamptz end
         from ${elements(2)}
         where runs.tenant_id = x->>'tenant' and runs.id = (x->>'id') collate "C"
           and runs.last_seq >= (x->>'after')::bigint and runs.last_seq < (x->>'from')::bigint`,
        [rowsOf(suffixes), suffixes.length]
      )
    }
  })

/**
 * Applies a batch of stored events (in stream order) to the read models with a few multi-row statements,
 * writing exactly the rows that `event` applied to each in turn would: run events as `runBatch`, audit entries
 * as one insert, agent events (rare) one by one. Run events in a shape no run actor writes fall back to
 * `event`. A value the database refuses fails the whole batch, as one event of it would.
 */
export const batch = (tx: SqlPort, events: ReadonlyArray<Envelope.Stored>): Effect.Effect<void, DatabaseUnavailable> =>
  Effect.gen(function*() {
    const runs = events.filter(isRunEvent)
    const audit = new Map<string, Record<string, unknown>>()
    // the tables of runs, agents and audit entries are disjoint: each group keeps its own order
    for (const s of events) {
      if (isRunEvent(s)) continue
      if (s.event._tag === "AuditRecorded") {
        const e = s.event
        const key = JSON.stringify([s.envelope.tenant, s.envelope.actor.id])
        if (!audit.has(key)) {
          audit.set(key, {
            tenant: s.envelope.tenant,
            id: s.envelope.actor.id,
            seq: s.seq,
            at: s.envelope.at,
            action: e.action,
            actor: e.actor,
            target: e.target,
            outcome: e.outcome,
            detail: e.detail ?? null
          })
        }
      } else {
        yield* event(tx, s)
      }
    }
    if (audit.size > 0) {
      yield* tx.query(
        `insert into audit_events (tenant_id, id, seq, at, action, actor, target, outcome, detail)
         select x->>'tenant', x->>'id', (x->>'seq')::bigint, (x->>'at')::timestamptz, x->>'action', x->>'actor',
           x->>'target', x->>'outcome', x->'detail'
         from jsonb_array_elements($1::jsonb) with ordinality as r(x, n) order by n
         on conflict (tenant_id, id) do nothing`,
        [rowsOf([...audit.values()])]
      )
    }
    if (runs.length === 0) return
    if (stepsInShape(runs)) yield* runBatch(tx, runs)
    else for (const s of runs) yield* event(tx, s)
  })
