// The operator queue as the rest of Lantern sees it (issue 16): schedules, sensors and queue workflows submit tasks
// and follow them through this port; the task actor (actors/task/Tasks.ts) provides it.
import { Context, type Effect, type Stream } from "effect"
import type { BusUnavailable } from "../../schema/Errors.ts"
import type { Outcome, TaskOrigin, TaskStatus, TaskSubmission } from "../../schema/Task.ts"

/** A task as the queue reports it: its state, its attempts and, once it has one, its verified outcome. */
export interface TaskSummary {
  readonly id: string
  readonly tenant: string
  readonly kind: string
  readonly source: string
  readonly status: TaskStatus
  readonly priority: number
  readonly attempts: number
  readonly origin: TaskOrigin
  /** The outcome of the last finished attempt (verified when `completed`). */
  readonly outcome: Outcome | null
  /** Why the task is blocked, failed or canceled, when it is. */
  readonly reason: string | null
  readonly artifactRoot: string
  /** Paths of the artifacts its attempts stored, relative to its artifact root. */
  readonly artifacts: ReadonlyArray<string>
  readonly costUsd: number
  readonly createdAt: string
  readonly updatedAt: string
  /** When it last reached completed, blocked, permanent_failure or canceled. */
  readonly finishedAt: string | null
}

/** A task's change of state, as published to every follower (in journal order per task). */
export interface TaskChange {
  readonly task: TaskSummary
  readonly previous: TaskStatus | null
}

export class TaskRefused extends Error {
  readonly _tag = "TaskRefused"
  constructor(readonly field: string, message: string) {
    super(message)
  }
}

export class TaskQueue extends Context.Service<TaskQueue, {
  /**
   * Journals a new task (pending, or waiting for `availableAt`), or answers the task that already holds its
   * `dedupeKey` in this tenant with `created: false`.
   */
  readonly submit: (
    tenant: string,
    submission: TaskSubmission,
    origin?: TaskOrigin
  ) => Effect.Effect<{ readonly task: TaskSummary; readonly created: boolean }, TaskRefused | BusUnavailable>
  readonly get: (tenant: string, id: string) => Effect.Effect<TaskSummary | null, BusUnavailable>
  readonly list: (
    tenant: string,
    filter?: { readonly status?: TaskStatus; readonly kind?: string; readonly source?: string }
  ) => Effect.Effect<ReadonlyArray<TaskSummary>, BusUnavailable>
  /** Every change of every task of the tenant from now on (or of all tenants when `tenant` is null). */
  readonly changes: (tenant: string | null) => Stream.Stream<TaskChange, BusUnavailable>
}>()("lantern/actors/task/TaskQueue") {}
