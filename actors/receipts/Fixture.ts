// A small, realistic run journal for receipt tests, the benchmark and the worked example of docs/receipts.md:
// RunStarted, then model steps (StepStarted, StepCompleted), then RunSucceeded, as the run actor records them.
import type * as Verify from "./Verify.ts"

export const TENANT = "acme"
export const RUN_ID = "run_01jd0000000000000000000000"

const envelope = (runId: string, n: number, type: string, payload: Record<string, unknown>, tenant = TENANT) => ({
  eventId: `evt_${runId.slice(4, 20)}${n.toString(36).padStart(10, "0")}`,
  type,
  version: 1,
  tenant,
  actor: { type: "run", tenant, id: runId },
  causationId: null,
  correlationId: runId,
  traceparent: null,
  at: new Date(Date.UTC(2026, 10, 21, 12, 0, 0, n * 7)).toISOString(),
  idempotencyKey: `${runId}:${n}`,
  payload
})

const ANSWER = "The quick brown fox jumps over the lazy dog; a short model answer of typical size."

/**
 * A finished run's journal lines with `steps` model steps (2 + 2·steps events), its stream sequences starting at
 * `firstSeq` and spaced by `stride` (other runs interleave in the stream). `terminal: false` leaves it running.
 */
export const journal = (
  options: { runId?: string; tenant?: string; steps?: number; firstSeq?: number; stride?: number; terminal?: boolean } =
    {}
): Array<Verify.Line> => {
  const runId = options.runId ?? RUN_ID
  const tenant = options.tenant ?? TENANT
  const steps = options.steps ?? 1
  const stride = options.stride ?? 3
  const envelopes: Array<Record<string, unknown>> = [
    envelope(runId, 1, "RunStarted", {
      runId,
      agentName: "support",
      agentVersion: 1,
      agentDigest: "sha256:4f1c0c9c2b7a6f1e",
      spec: { systemPrompt: "Answer briefly.", model: "offline/echo", tools: [], maxTurns: 4 },
      input: "hello",
      requestDigest: "5e3c"
    }, tenant)
  ]
  for (let s = 0; s < steps; s++) {
    envelopes.push(
      envelope(runId, envelopes.length + 1, "StepStarted", {
        stepId: `turn-${s}.model`,
        attempt: 1,
        request: { _tag: "model", model: "offline/echo", turn: s }
      }, tenant)
    )
    envelopes.push(envelope(runId, envelopes.length + 1, "StepCompleted", {
      stepId: `turn-${s}.model`,
      attempt: 1,
      result: {
        _tag: "model",
        answer: { content: ANSWER, toolCalls: [], finishReason: "stop", provider: "offline", model: "echo" }
      },
      tokensIn: 812,
      tokensOut: 23,
      costUsd: 0.000412,
      durationMs: 3
    }, tenant))
  }
  if (options.terminal !== false)
    envelopes.push(envelope(runId, envelopes.length + 1, "RunSucceeded", { output: ANSWER }, tenant))
  const first = options.firstSeq ?? 10
  return envelopes.map((e, i) => ({ n: i + 1, seq: first + i * stride, envelope: e }))
}
