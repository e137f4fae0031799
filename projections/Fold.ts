// How each stored event changes the read models: one SQL write per event, inside the projector's batch
// transaction. Rows take their times from the event's `at` only, so replaying a journal writes identical rows.
// The projector writes every tenant's rows as the connecting user, whose system role passes row-level security.
import { Effect } from "effect"
import type * as Envelope from "../schema/Envelope.ts"
import type { DatabaseUnavailable } from "../schema/Errors.ts"
import type { SqlPort } from "./Sql.ts"

/** A JSON value as the text of a `$n::jsonb` parameter; `undefined` becomes JSON null. */
const json = (value: unknown): string => JSON.stringify(value === undefined ? null : value)

/** Run rows move forward only: an event at or below the run's last sequence was already folded in. */
const RUN_GUARD = `tenant_id = $1 and id = $2 and last_seq < $3`

const touchRun = (tx: SqlPort, tenant: string, runId: string, seq: number, at: string) =>
  tx.query(`update runs set updated_at = $4::timestamptz, last_seq = $3 where ${RUN_GUARD}`, [tenant, runId, seq, at])

const finishRun = (
  tx: SqlPort,
  s: Envelope.Stored,
  status: "succeeded" | "failed" | "canceled",
  output: unknown,
  error: unknown
) =>
  tx.query(
    `update runs set status = $4, output = $5::jsonb, error = $6::jsonb,
       finished_at = $7::timestamptz, updated_at = $7::timestamptz, last_seq = $3
     where ${RUN_GUARD}`,
    [s.envelope.tenant, s.envelope.actor.id, s.seq, status, output === null ? null : json(output), error === null ? null : json(error), s.envelope.at]
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
        `insert into runs (tenant_id, id, agent_name, agent_version, status, input, created_at, updated_at, last_seq)
         values ($1, $2, $3, $4, 'running', $5::jsonb, $6::timestamptz, $6::timestamptz, $7)
         on conflict (tenant_id, id) do nothing`,
        [tenant, runId, e.agentName, e.agentVersion, json(e.input), at, seq]
      ))
    case "StepStarted":
      return Effect.asVoid(Effect.andThen(
        tx.query(
          `insert into steps (tenant_id, run_id, step_id, attempt, kind, status, request, started_at, seq, wake_at)
           values ($1, $2, $3, $4, $5, 'started', $6::jsonb, $7::timestamptz, $8, $9::timestamptz)
           on conflict (tenant_id, run_id, step_id, attempt) do nothing`,
          [tenant, runId, e.stepId, e.attempt, e.request._tag, json(e.request), at, seq, e.wakeAt === undefined ? null : new Date(e.wakeAt).toISOString()]
        ),
        touchRun(tx, tenant, runId, seq, at)
      ))
    case "StepCompleted":
      return Effect.asVoid(Effect.andThen(
        tx.query(
          `update steps set status = 'completed', result = $5::jsonb, error = null, tokens_in = $6, tokens_out = $7,
             cost_usd = $8::numeric, finished_at = $9::timestamptz
           where tenant_id = $1 and run_id = $2 and step_id = $3 and attempt = $4`,
          [tenant, runId, e.stepId, e.attempt, json(e.result), e.tokensIn, e.tokensOut, e.costUsd, at]
        ),
        tx.query(
          `update runs set steps = steps + 1, tokens_in = tokens_in + $4, tokens_out = tokens_out + $5,
             cost_usd = cost_usd + $6::numeric, updated_at = $7::timestamptz, last_seq = $3
           where ${RUN_GUARD}`,
          [tenant, runId, seq, e.tokensIn, e.tokensOut, e.costUsd, at]
        )
      ))
    case "StepFailed":
      return Effect.asVoid(Effect.andThen(
        tx.query(
          `update steps set status = 'failed', error = $5::jsonb, finished_at = $6::timestamptz
           where tenant_id = $1 and run_id = $2 and step_id = $3 and attempt = $4`,
          [tenant, runId, e.stepId, e.attempt, json(e.error), at]
        ),
        touchRun(tx, tenant, runId, seq, at)
      ))
    case "RunSucceeded":
      return Effect.asVoid(finishRun(tx, s, "succeeded", e.output ?? null, null))
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
