// The `agent-cli` task adapter (issue 16, ADR 0057): runs a coding-agent CLI (codex, claude-code) headless inside a
// sandbox workload through the spawner, started in the task's artifact root (the one host directory it may write,
// so the files it makes are there when it ends), and reads its machine output through the driver: the final
// message's Outcome JSON block (or its text), usage and cost, the files the event stream shows it changing, errors
// and rate-limit hints. The tier is the spec's, `standard` by default: refused, never downgraded, when no backend
// here provides it.
import { accessSync, constants, mkdirSync } from "node:fs"
import { delimiter, isAbsolute, join, resolve } from "node:path"
import { Effect, Stream } from "effect"
import type { BusUnavailable } from "../../schema/Errors.ts"
import type { AdapterSpec } from "../../schema/Task.ts"
import type { Tier, WorkloadSpec } from "../../schema/Workload.ts"
import type { IsolationUnavailable } from "../spawner/Backends.ts"
import { type SpawnFailed, Spawner, type WorkloadQuotaExceeded } from "../spawner/Spawner.ts"
import {
  type Adapter,
  attemptFailure,
  type AttemptContext,
  type AttemptFailure,
  type AttemptResult
} from "./Adapter.ts"
import * as ClaudeCode from "./drivers/ClaudeCode.ts"
import * as Codex from "./drivers/Codex.ts"
import type { Driver } from "./drivers/Driver.ts"
import * as Normalize from "./Normalize.ts"
import { abortable } from "./OllamaAdapter.ts"
import * as Prompt from "./Prompt.ts"

type Spec = Extract<AdapterSpec, { type: "agent-cli" }>

export const DEFAULT_TIER: Tier = "standard"
export const DEFAULT_TIMEOUT_SECONDS = 1800
export const MEMORY_MB = 2048
/** How much of stderr a failure quotes. */
const STDERR_TAIL = 1_000

export const DRIVERS: Readonly<Record<Spec["driver"], Driver>> = {
  codex: Codex.driver,
  "claude-code": ClaudeCode.driver
}

export interface Settings {
  readonly spawner: Spawner["Service"]
  /** The PATH a bare command name is looked up on (this host's). */
  readonly path?: string
}

/** The executable `command` names: itself when it holds a `/` (resolved from the current directory), else the first on `path`. */
export const resolveCommand = (command: string, path: string): string | null => {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  if (command.includes("/")) {
    const file = isAbsolute(command) ? command : resolve(command)
    return executable(file) ? file : null
  }
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue
    const file = join(dir, command)
    if (executable(file)) return file
  }
  return null
}

const failure = attemptFailure

/** The workload a run of the CLI is: its command line, the vendor's host as its one egress rule, its secrets. */
export const workloadOf = (spec: Spec, driver: Driver, executable: string, prompt: string): WorkloadSpec => ({
  apiVersion: "lantern.dev/v1",
  kind: "AgentSpec",
  metadata: { name: `task-${driver.name}` },
  spec: {
    command: [executable],
    args: [...driver.args(prompt)],
    ...(spec.env === undefined ? {} : { env: spec.env }),
    isolation: spec.isolation ?? DEFAULT_TIER,
    limits: { vcpu: 1, memoryMb: MEMORY_MB, timeoutSeconds: spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS },
    network: "allowlist",
    egressRules: [{ host: driver.apiHost, ports: [443] }],
    ...(spec.secrets === undefined ? {} : { secrets: spec.secrets })
  }
})

interface Ended {
  readonly stdout: string
  readonly stderr: string
  /** The exit code, or null when it did not exit by itself (terminated, failed). */
  readonly code: number | null
  readonly reason: string | null
}

export const make = (settings: Settings): Adapter => {
  const { spawner } = settings
  const path = () => settings.path ?? process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"

  const probe = (_tenant: string, spec: AdapterSpec) =>
    Effect.gen(function*() {
      if (spec.type !== "agent-cli") return { ok: false as const, reason: `not an agent-cli spec (${spec.type})` }
      const driver = DRIVERS[spec.driver]
      const command = spec.command ?? driver.defaultCommand
      if (resolveCommand(command, path()) === null) {
        return {
          ok: false as const,
          reason: command.includes("/")
            ? `${spec.driver}: ${command} is not an executable file`
            : `${spec.driver}: ${command} is not on PATH`
        }
      }
      const tier = spec.isolation ?? DEFAULT_TIER
      const placed = yield* Effect.result(spawner.placement(tier, { sharedWorkDir: true }))
      if (placed._tag === "Failure") {
        return {
          ok: false as const,
          reason: `${placed.failure.message}${
            spec.isolation === undefined ? " (the agent-cli default; set isolation to choose another tier)" : ""
          }`
        }
      }
      return { ok: true as const }
    })

  /** Follows the workload's journal to its end, collecting its output. */
  const collect = (tenant: string, id: string): Effect.Effect<Ended, BusUnavailable> =>
    spawner.follow(tenant, id, 0).pipe(
      Stream.runFold(
        (): { stdout: Array<string>; stderr: Array<string>; code: number | null; reason: string | null } => ({
          stdout: [],
          stderr: [],
          code: null,
          reason: null
        }),
        (acc, s) => {
          const e = s.event as { _tag: string; stream?: string; text?: string; code?: number; reason?: string }
          if (e._tag === "WorkloadOutput") (e.stream === "stdout" ? acc.stdout : acc.stderr).push(e.text ?? "")
          else if (e._tag === "WorkloadExited") acc.code = e.code ?? null
          else if (e._tag === "WorkloadTerminated" || e._tag === "WorkloadFailed") acc.reason = e.reason ?? e._tag
          return acc
        }
      ),
      Effect.map((acc) => ({
        stdout: acc.stdout.join(""),
        stderr: acc.stderr.join(""),
        code: acc.code,
        reason: acc.reason
      }))
    )

  const execute = (spec: AdapterSpec, ctx: AttemptContext): Effect.Effect<AttemptResult, AttemptFailure> =>
    Effect.gen(function*() {
      if (spec.type !== "agent-cli")
        return yield* Effect.fail(failure(`not an agent-cli spec (${spec.type})`, false, null))
      const s: Spec = spec
      const driver = DRIVERS[s.driver]
      const command = s.command ?? driver.defaultCommand
      const prompt = Prompt.single(ctx, true)
      // what the agent saw: the command as the spec names it (not this host's path to it), so a bundle's hash does
      // not depend on the host; secrets by name only
      const seen = {
        driver: s.driver,
        command: [command, ...driver.args(prompt)],
        prompt,
        isolation: s.isolation ?? DEFAULT_TIER,
        env: s.env ?? {},
        secrets: (s.secrets ?? []).map((x) => x.envName)
      }
      const executable = resolveCommand(command, path())
      if (executable === null) {
        return yield* Effect.fail(failure(`${s.driver}: ${command} is not an executable on this host`, false, seen))
      }
      yield* Effect.try({
        try: () => mkdirSync(ctx.artifactRoot, { recursive: true }),
        catch: (e) => failure(`the artifact root cannot be made: ${(e as Error).message}`, true, seen)
      })
      const view = yield* spawner.start(
        ctx.tenant,
        workloadOf(s, driver, executable, prompt),
        null,
        `task:${ctx.taskId}`,
        { workDir: ctx.artifactRoot }
      ).pipe(Effect.mapError((e) => fromStartError(e, seen)))
      const withRef = { ...seen, workloadId: view.id }
      const ended = yield* abortable(
        collect(ctx.tenant, view.id).pipe(
          Effect.mapError((e) => failure(`following workload ${view.id}: ${e.message}`, true, withRef))
        ),
        ctx.signal,
        withRef
      ).pipe(
        // canceled or interrupted: the CLI is stopped, not left running
        Effect.onError(() => Effect.ignore(spawner.terminate(ctx.tenant, view.id, `task:${ctx.taskId}`)))
      )
      const parsed = driver.parse(ended.stdout, ctx.artifactRoot)
      const tail = ended.stderr.slice(-STDERR_TAIL).trim()
      const errorText = [...parsed.errors, tail].filter((x) => x !== "").join("\n")
      const rateLimit = parsed.errors.length > 0 || ended.code !== 0
        ? Normalize.retryAfterOf(errorText)
        : undefined
      if (rateLimit !== undefined) {
        return yield* Effect.fail(
          failure(`${s.driver} was rate limited: ${firstLine(errorText)}`, true, seen, rateLimit)
        )
      }
      if (parsed.errors.length > 0) {
        return yield* Effect.fail(failure(`${s.driver} reported an error: ${parsed.errors.join("; ")}`, true, seen))
      }
      if (ended.code === null) {
        return yield* Effect.fail(
          failure(`workload ${view.id} did not finish: ${ended.reason ?? "it ended"}`, true, seen)
        )
      }
      if (parsed.finalMessage === null || parsed.finalMessage.trim() === "") {
        return yield* Effect.fail(
          failure(
            `${s.driver} exited with ${ended.code} and no final message${tail === "" ? "" : `: ${firstLine(tail)}`}`,
            true,
            seen
          )
        )
      }
      const outcome = Normalize.fromText(parsed.finalMessage, parsed.fileChanges)
      return {
        // a CLI that exited non-zero without saying why did not complete, whatever its last message said
        outcome: ended.code !== 0 && outcome.status === "completed"
          ? { ...outcome, status: "failed" as const, machineStatus: `exit_${ended.code}` }
          : outcome,
        seen,
        usage: parsed.usage,
        ref: { workloadId: view.id }
      }
    })

  return { type: "agent-cli", probe, execute }
}

const firstLine = (text: string) => (text.split("\n").find((l) => l.trim() !== "") ?? "").slice(0, 300)

const fromStartError = (
  e: IsolationUnavailable | WorkloadQuotaExceeded | SpawnFailed | BusUnavailable,
  seen: unknown
): AttemptFailure => {
  switch (e._tag) {
    case "IsolationUnavailable":
      return failure(e.message, false, seen)
    case "WorkloadQuotaExceeded":
      // the tenant's workload quota is a rate limit of its own: wait, do not spend the attempt
      return failure(e.message, true, seen, e.retryAfterSeconds)
    default:
      return failure(e.message, true, seen)
  }
}

/** The adapter over this host's spawner. */
export const fromHost = Effect.gen(function*() {
  return make({ spawner: yield* Spawner })
})
