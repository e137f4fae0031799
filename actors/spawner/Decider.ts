// The pure core of the spawner's workload actor (ADR 0046): WorkloadScheduled → Placed → Spawned → IdentityMinted →
// SecretVended* / Heartbeat* / Output* / Egress* → Exited | Terminated | Failed. Reports of the harness are journaled
// only while the workload runs; once it has ended nothing more is written, so a report re-sent after the end
// (or by a harness that outlived its host) changes nothing.
import { Data } from "effect"
import { accept, type Decider, ignore, reject } from "../kernel/Decider.ts"
import type * as W from "../../schema/Workload.ts"
import { WorkloadNotFound } from "../../schema/Workload.ts"

// the errors a reader of workloads answers too (actors/receipts), defined beside the events
export { WorkloadNotEnded, WorkloadNotFound } from "../../schema/Workload.ts"

export interface State {
  readonly status: W.WorkloadState | "none"
  readonly spec: W.WorkloadSpec | null
  readonly input: string | null
  readonly createdBy: string | null
  readonly backend: string | null
  readonly host: string | null
  readonly pid: number | null
  readonly enforced: ReadonlyArray<string>
  readonly keyId: string | null
  readonly vended: ReadonlyArray<string>
  readonly exitCode: number | null
  readonly usage: W.Usage | null
  readonly reason: string | null
  readonly egress: ReadonlyArray<{ host: string; port: number; allowed: boolean; detail: string }>
  readonly heartbeats: number
  readonly lastHeartbeat: string | null
  readonly outputChunks: number
  /** Starts so far: 1, and one more for each restart of an `idempotent` workload. */
  readonly attempt: number
  /** Model calls made through the harness, and what they used (ADR 0062). */
  readonly modelCalls: number
  readonly tokensIn: number
  readonly tokensOut: number
  readonly costUsd: number
}

export const initialState: State = {
  status: "none",
  spec: null,
  input: null,
  createdBy: null,
  backend: null,
  host: null,
  pid: null,
  enforced: [],
  keyId: null,
  vended: [],
  exitCode: null,
  usage: null,
  reason: null,
  egress: [],
  heartbeats: 0,
  lastHeartbeat: null,
  outputChunks: 0,
  attempt: 1,
  modelCalls: 0,
  tokensIn: 0,
  tokensOut: 0,
  costUsd: 0
}

/** What the harness reports about a running workload. */
export type Report =
  | { readonly _tag: "output"; readonly stream: "stdout" | "stderr"; readonly text: string }
  | { readonly _tag: "heartbeat"; readonly at: string; readonly cpuMs: number; readonly rssKb: number | null }
  | {
    readonly _tag: "egress"
    readonly host: string
    readonly port: number
    readonly allowed: boolean
    readonly detail: string
  }
  | { readonly _tag: "exited"; readonly code: number; readonly usage: W.Usage }
  | { readonly _tag: "killed"; readonly reason: string; readonly by: string; readonly usage: W.Usage }

export type Command =
  | { readonly _tag: "Schedule"; readonly spec: W.WorkloadSpec; readonly input: string | null; readonly by: string }
  /**
   * A first start's whole record before its harness is told to go (ADR 0069): Scheduled, Placed and IdentityMinted
   * in one append, the events a Schedule, a Place and an IdentityMinted would give one by one.
   */
  | {
    readonly _tag: "Start"
    readonly spec: W.WorkloadSpec
    readonly input: string | null
    readonly by: string
    readonly backend: string
    readonly keyId: string
    readonly expiresAt: string
  }
  | { readonly _tag: "Place"; readonly backend: string }
  | { readonly _tag: "Spawned"; readonly host: string; readonly pid: number; readonly enforced: ReadonlyArray<string> }
  | { readonly _tag: "IdentityMinted"; readonly keyId: string; readonly expiresAt: string }
  | { readonly _tag: "Vend"; readonly envName: string }
  | { readonly _tag: "Report"; readonly reports: ReadonlyArray<Report> }
  | { readonly _tag: "Adopt"; readonly host: string }
  | { readonly _tag: "Restart"; readonly reason: string }
  | { readonly _tag: "Terminate"; readonly reason: string; readonly by: string; readonly usage: W.Usage | null }
  | { readonly _tag: "Fail"; readonly reason: string }
  | { readonly _tag: "ModelCalled"; readonly call: Omit<W.WorkloadModelCalled, "_tag"> }

export class WorkloadFinished extends Data.TaggedError("WorkloadFinished")<{
  readonly id: string
  readonly status: string
}> {
  override get message() {
    return `workload '${this.id}' has already ${this.status}`
  }
}

/** Why a secret is not vended: one refusal for every cause, so a caller learns nothing from which it was. */
export class VendRefused extends Data.TaggedError("VendRefused")<{ readonly envName: string }> {
  override get message() {
    return `secret ${this.envName} is not vended to this caller`
  }
}

export type Refusal = WorkloadNotFound | WorkloadFinished | VendRefused

export const isFinished = (s: State) => s.status === "exited" || s.status === "terminated" || s.status === "failed"

type E = W.WorkloadEvent

const reportEvent = (r: Report): E => {
  switch (r._tag) {
    case "output":
      return { _tag: "WorkloadOutput", stream: r.stream, text: r.text }
    case "heartbeat":
      return { _tag: "WorkloadHeartbeat", at: r.at, cpuMs: r.cpuMs, rssKb: r.rssKb }
    case "egress":
      return { _tag: "WorkloadEgress", host: r.host, port: r.port, allowed: r.allowed, detail: r.detail }
    case "exited":
      return { _tag: "WorkloadExited", code: r.code, usage: r.usage }
    case "killed":
      return { _tag: "WorkloadTerminated", reason: r.reason, by: r.by, usage: r.usage }
  }
}

export const decide = (
  command: Command,
  state: State,
  id = ""
): ReturnType<Decider<State, Command, E, Refusal>["decide"]> => {
  if (command._tag === "Schedule") {
    if (state.status !== "none") return ignore
    return accept({ _tag: "WorkloadScheduled", spec: command.spec, input: command.input, by: command.by })
  }
  if (command._tag === "Start") {
    if (state.status !== "none") return ignore
    return accept(
      { _tag: "WorkloadScheduled", spec: command.spec, input: command.input, by: command.by },
      { _tag: "WorkloadPlaced", backend: command.backend },
      { _tag: "WorkloadIdentityMinted", keyId: command.keyId, expiresAt: command.expiresAt }
    )
  }
  if (state.status === "none") return reject(new WorkloadNotFound({ id }))
  switch (command._tag) {
    case "Place":
      if (state.status !== "scheduled") return ignore
      return accept({ _tag: "WorkloadPlaced", backend: command.backend })
    case "Spawned":
      if (state.status !== "placed") return ignore
      return accept({ _tag: "WorkloadSpawned", host: command.host, pid: command.pid, enforced: command.enforced })
    case "IdentityMinted":
      if (isFinished(state) || state.keyId !== null) return ignore
      return accept({ _tag: "WorkloadIdentityMinted", keyId: command.keyId, expiresAt: command.expiresAt })
    case "Vend": {
      const declared = (state.spec?.spec.secrets ?? []).some((s) => s.envName === command.envName)
      if ((state.status !== "running" && state.status !== "placed") || !declared)
        return reject(new VendRefused({ envName: command.envName }))
      return accept({ _tag: "WorkloadSecretVended", envName: command.envName })
    }
    case "Report": {
      if (isFinished(state)) return ignore
      const out: Array<E> = []
      for (const r of command.reports) {
        out.push(reportEvent(r))
        if (r._tag === "exited" || r._tag === "killed") break
      }
      return accept(...out)
    }
    case "Adopt":
      if (isFinished(state) || state.host === command.host) return ignore
      return accept({ _tag: "WorkloadAdopted", host: command.host, from: state.host ?? "" })
    case "Restart":
      // only a spec that says so is ever started twice, and only while it has not ended
      if (isFinished(state) || state.status !== "running" || state.spec?.spec.idempotent !== true) return ignore
      return accept({ _tag: "WorkloadRestarted", reason: command.reason, attempt: state.attempt + 1 })
    case "Terminate":
      if (isFinished(state)) return reject(new WorkloadFinished({ id, status: state.status }))
      return accept({ _tag: "WorkloadTerminated", reason: command.reason, by: command.by, usage: command.usage })
    case "Fail":
      if (isFinished(state)) return ignore
      return accept({ _tag: "WorkloadFailed", reason: command.reason })
    case "ModelCalled":
      // a call answered after the workload ended is not journaled (its cost is settled in the budget all the same)
      if (isFinished(state)) return ignore
      return accept({ _tag: "WorkloadModelCalled", ...command.call })
  }
}

export const evolve = (state: State, event: E): State => {
  switch (event._tag) {
    case "WorkloadScheduled":
      return { ...state, status: "scheduled", spec: event.spec, input: event.input, createdBy: event.by }
    case "WorkloadPlaced":
      return { ...state, status: "placed", backend: event.backend }
    case "WorkloadSpawned":
      return { ...state, status: "running", host: event.host, pid: event.pid, enforced: event.enforced }
    case "WorkloadIdentityMinted":
      return { ...state, keyId: event.keyId }
    case "WorkloadSecretVended":
      return { ...state, vended: [...state.vended, event.envName] }
    case "WorkloadHeartbeat":
      return { ...state, heartbeats: state.heartbeats + 1, lastHeartbeat: event.at }
    case "WorkloadOutput":
      return { ...state, outputChunks: state.outputChunks + 1 }
    case "WorkloadEgress":
      return {
        ...state,
        egress: [...state.egress, { host: event.host, port: event.port, allowed: event.allowed, detail: event.detail }]
      }
    case "WorkloadModelCalled":
      return {
        ...state,
        modelCalls: state.modelCalls + 1,
        tokensIn: state.tokensIn + event.tokensIn,
        tokensOut: state.tokensOut + event.tokensOut,
        costUsd: state.costUsd + event.costUsd
      }
    case "WorkloadAdopted":
      return { ...state, host: event.host }
    case "WorkloadRestarted":
      return { ...state, status: "placed", host: null, pid: null, attempt: event.attempt }
    case "WorkloadExited":
      return { ...state, status: "exited", exitCode: event.code, usage: event.usage }
    case "WorkloadTerminated":
      return { ...state, status: "terminated", reason: event.reason, usage: event.usage }
    case "WorkloadFailed":
      return { ...state, status: "failed", reason: event.reason }
  }
}

export const decider = (id = ""): Decider<State, Command, E, Refusal> => ({
  initialState,
  decide: (c, s) => decide(c, s, id),
  evolve
})
