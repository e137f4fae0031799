// Live model tokens (ADR 0061): what a run's host publishes on core NATS while a model step's answer streams in,
// and what the API's `/v1/runs/{id}/tokens` stream shows. Ephemeral: never journaled, the final answer is.
import { Schema } from "effect"

/** A piece of a step's answer text, or `reset`: forget the text of this step given so far (the router failed over). */
export const Frame = Schema.Union([
  Schema.Struct({
    stepId: Schema.String,
    attempt: Schema.Number,
    /** 1, 2, … per step attempt, in the order published. */
    seq: Schema.Number,
    text: Schema.String
  }),
  Schema.Struct({ stepId: Schema.String, attempt: Schema.Number, seq: Schema.Number, reset: Schema.Literal(true) })
])
export type Frame = typeof Frame.Type

export const isReset = (f: Frame): f is Extract<Frame, { readonly reset: true }> => "reset" in f

/**
 * A watcher's interest in a run's tokens (ADR 0066), on `lantern.tokens.watch.<tenant>.<runId>`: `watcher` (one id
 * per follow) wants the frames for `ttlMs` from now, renewed while it watches; `end` withdraws it at once.
 */
export const Interest = Schema.Union([
  Schema.Struct({ watcher: Schema.String, ttlMs: Schema.Number }),
  Schema.Struct({ watcher: Schema.String, end: Schema.Literal(true) })
])
export type Interest = typeof Interest.Type
