// The cockpit's client of the edge: plain fetch with the signed-in key in the Authorization header (never in a URL),
// each answer typed by the schema/ bodies it is, each error answer thrown as one ApiError.
import type { AgentVersionView, AgentView } from "../../schema/Agent.ts"
import type { EventResponse, RunListResponse } from "../../schema/Api.ts"
import type { AuditPage, AuditQuery } from "../../schema/Audit.ts"
import type { BudgetLimits, BudgetResponse, UsageResponse } from "../../schema/Budget.ts"

type RunPage = typeof RunListResponse.Type
import type { PublicKey, Receipt } from "../../schema/Receipt.ts"
import type { RunStatus, RunView } from "../../schema/Run.ts"
import type { SessionView } from "../../schema/Channel.ts"
import type { BaselineView, EvalRunView, SuiteView } from "../../schema/Eval.ts"
import type { ExperimentView } from "../../schema/Experiment.ts"
import type { ForecastResponse } from "../../schema/Forecast.ts"
import type { DispatchView, TaskDetail, TaskStatus, TaskView } from "../../schema/Task.ts"

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

export interface RunFilter {
  readonly status?: RunStatus | undefined
  readonly agentName?: string | undefined
  /** Runs created at or after this time (epoch ms): kept by the page, the API lists newest first regardless. */
  readonly since?: number | undefined
}

export type Client = ReturnType<typeof makeClient>

/** What `GET /v1/tasks` filters by (each exact). */
export interface TaskFilter {
  readonly status?: TaskStatus | undefined
  readonly kind?: string | undefined
  readonly source?: string | undefined
}

/** An API key as `GET /v1/api-keys` lists it (edge/Api.ts's KeyView, which lives outside schema/). */
export interface KeyView {
  readonly id: string
  readonly name: string
  readonly scopes: ReadonlyArray<string>
  readonly last4: string
  readonly expiresAt: string | null
  readonly createdAt: string
  readonly parentId: string | null
}

/** A workload as `GET /v1/workloads/{id}` answers it (edge/Api.ts's WorkloadView, which lives outside schema/). */
export interface WorkloadView {
  readonly id: string
  readonly name: string
  readonly state: "scheduled" | "placed" | "running" | "exited" | "terminated" | "failed"
  readonly isolation: string
  readonly backend: string | null
  readonly host: string | null
  readonly exitCode: number | null
  readonly reason: string | null
  readonly usage: { readonly wallMs: number; readonly cpuMs: number; readonly peakRssKb: number | null } | null
  readonly enforced: ReadonlyArray<string>
  readonly secretsVended: ReadonlyArray<string>
  readonly egress: ReadonlyArray<{ host: string; port: number; allowed: boolean; detail: string }>
  readonly heartbeats: number
  readonly attempt: number
  readonly createdAt: string | null
  readonly createdBy: string | null
}

/** A client for `token`; `onUnauthorized` hears of a 401 (an expired or revoked key), so the page can sign out. */
export const makeClient = (token: string, onUnauthorized: () => void = () => {}) => {
  /** `accept`: error statuses whose body is an answer all the same (a forecast's 402). */
  const call = async (path: string, init: RequestInit = {}, accept: ReadonlyArray<number> = []): Promise<Response> => {
    let res: Response
    try {
      res = await fetch(path, {
        ...init,
        headers: {
          authorization: `Bearer ${token}`,
          ...(init.body === undefined ? {} : { "content-type": "application/json" })
        }
      })
    } catch (e) {
      throw new ApiError(0, "unreachable", `the server did not answer: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (res.ok || accept.includes(res.status)) return res
    if (res.status === 401) onUnauthorized()
    const body = await res.json().catch(() => null) as { error?: { code?: string; message?: string } } | null
    throw new ApiError(res.status, body?.error?.code ?? `http_${res.status}`, body?.error?.message ?? res.statusText)
  }
  const json = async <A>(path: string, init?: RequestInit): Promise<A> => (await call(path, init)).json() as Promise<A>
  const post = <A>(path: string, body: unknown) => json<A>(path, { method: "POST", body: JSON.stringify(body) })
  const id = encodeURIComponent

  return {
    token,
    listRuns: (filter: RunFilter = {}, limit = 200, cursor: string | null = null) => {
      const q = new URLSearchParams({ limit: String(limit) })
      if (cursor !== null) q.set("cursor", cursor)
      if (filter.status !== undefined) q.set("status", filter.status)
      if (filter.agentName !== undefined) q.set("agentName", filter.agentName)
      return json<RunPage>(`/v1/runs?${q}`)
    },
    getRun: (runId: string) => json<RunView>(`/v1/runs/${id(runId)}`),
    events: (runId: string) => json<{ items: ReadonlyArray<EventResponse> }>(`/v1/runs/${id(runId)}/events`),
    cancel: (runId: string, reason: string) => post<RunView>(`/v1/runs/${id(runId)}/cancel`, { reason }),
    approve: (runId: string, stepId: string, approved: boolean, by: string) =>
      post<RunView>(`/v1/runs/${id(runId)}/approvals/${id(stepId)}`, { approved, by }),
    receipt: (runId: string) => json<Receipt>(`/v1/runs/${id(runId)}/receipt`),
    journal: async (runId: string) => (await call(`/v1/runs/${id(runId)}/journal`)).text(),
    keys: () => json<{ keys: ReadonlyArray<PublicKey> }>("/.well-known/lantern-receipts"),
    listAgents: () => json<{ items: ReadonlyArray<AgentView> }>("/v1/agents"),
    versions: (name: string) => json<{ items: ReadonlyArray<AgentVersionView> }>(`/v1/agents/${id(name)}/versions`),
    startRun: (agentName: string, input: unknown) => post<RunView>("/v1/runs", { agentName, input }),
    /** What a run of this input would probably cost; a forecast that would break a hard cap (402) is answered too. */
    forecast: async (agentName: string, input: unknown) =>
      (await call("/v1/runs/forecast", { method: "POST", body: JSON.stringify({ agentName, input }) }, [402]))
        .json() as Promise<ForecastResponse>,
    usage: (name: string, days: number) => json<UsageResponse>(`/v1/agents/${id(name)}/usage?days=${days}`),
    agentBudget: (name: string) => json<BudgetResponse>(`/v1/agents/${id(name)}/budget`),
    tenantBudget: () => json<BudgetResponse>("/v1/budget"),
    /** Sets a scope's caps whole: the tenant's (`agentName` null) or an agent's. */
    setBudget: (agentName: string | null, limits: BudgetLimits) =>
      json<BudgetResponse>(agentName === null ? "/v1/budget" : `/v1/agents/${id(agentName)}/budget`, {
        method: "PUT",
        body: JSON.stringify(limits)
      }),
    listKeys: () => json<{ items: ReadonlyArray<KeyView> }>("/v1/api-keys"),
    /** A new key; `key` is in this answer only. */
    createKey: (body: { name: string; scopes: ReadonlyArray<string>; expiresAt?: string }) =>
      post<KeyView & { key: string }>("/v1/api-keys", body),
    revokeKey: async (keyId: string) => {
      await call(`/v1/api-keys/${id(keyId)}`, { method: "DELETE" })
    },
    listWorkloads: () => json<{ items: ReadonlyArray<WorkloadView> }>("/v1/workloads"),
    getWorkload: (workloadId: string) => json<WorkloadView>(`/v1/workloads/${id(workloadId)}`),
    workloadEvents: (workloadId: string) =>
      json<{ items: ReadonlyArray<EventResponse> }>(`/v1/workloads/${id(workloadId)}/events`),
    terminateWorkload: (workloadId: string) => post<WorkloadView>(`/v1/workloads/${id(workloadId)}/terminate`, {}),
    listTasks: (filter: TaskFilter = {}) => {
      const q = new URLSearchParams()
      for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== "") q.set(k, String(v))
      return json<{ items: ReadonlyArray<TaskView> }>(`/v1/tasks${q.size > 0 ? `?${q}` : ""}`)
    },
    getTask: (taskId: string) => json<TaskDetail>(`/v1/tasks/${id(taskId)}`),
    cancelTask: (taskId: string, reason: string) =>
      post<TaskView>(`/v1/tasks/${id(taskId)}/cancel`, reason === "" ? {} : { reason }),
    retryTask: (taskId: string) => post<TaskView>(`/v1/tasks/${id(taskId)}/retry`, {}),
    requeueTask: (taskId: string) => post<TaskView>(`/v1/tasks/${id(taskId)}/requeue`, {}),
    /** An artifact of a task (its path one percent-encoded segment), as a Blob: the key travels in a header. */
    taskArtifact: async (taskId: string, path: string) =>
      (await call(`/v1/tasks/${id(taskId)}/artifacts/${id(path)}`)).blob(),
    dispatch: () => json<DispatchView>("/v1/dispatch"),
    setDispatch: (paused: boolean, reason: string) =>
      json<DispatchView>("/v1/dispatch", {
        method: "PUT",
        body: JSON.stringify(reason === "" ? { paused } : { paused, reason })
      }),
    listSessions: () => json<{ items: ReadonlyArray<SessionView> }>("/v1/sessions"),
    getSession: (sessionId: string) => json<SessionView>(`/v1/sessions/${id(sessionId)}`),
    listSuites: () => json<{ items: ReadonlyArray<SuiteView> }>("/v1/eval-suites"),
    baselines: (agentName: string) =>
      json<{ items: ReadonlyArray<BaselineView> }>(`/v1/eval-baselines?agentName=${id(agentName)}`),
    startEvalRun: (suiteId: string) => post<{ id: string }>("/v1/eval-runs", { suiteId }),
    getEvalRun: (evalRunId: string) => json<EvalRunView>(`/v1/eval-runs/${id(evalRunId)}`),
    listExperiments: () => json<{ items: ReadonlyArray<ExperimentView> }>("/v1/experiments"),
    getExperiment: (experimentId: string) => json<ExperimentView>(`/v1/experiments/${id(experimentId)}`),
    audit: (query: Omit<AuditQuery, "limit">) => {
      const q = new URLSearchParams({ limit: "50" })
      for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v))
      return json<typeof AuditPage.Type>(`/v1/audit?${q}`)
    }
  }
}

/** Whether `token` opens the API (a cheap read every key with `runs:read` may make). */
export const check = async (token: string): Promise<ApiError | null> => {
  try {
    await makeClient(token).listRuns({}, 1)
    return null
  } catch (e) {
    return e instanceof ApiError ? e : new ApiError(0, "unreachable", String(e))
  }
}

/** The dev stack's token, offered on a page loaded from this machine; null anywhere else. */
export const devToken = async (): Promise<string | null> => {
  if (!["localhost", "127.0.0.1", "[::1]"].includes(location.hostname)) return null
  const res = await fetch("/cockpit/dev-token").catch(() => null)
  if (res === null || !res.ok) return null
  const body = await res.json().catch(() => null) as { token?: unknown } | null
  return typeof body?.token === "string" ? body.token : null
}
