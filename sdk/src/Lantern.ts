// The client: `new Lantern({baseUrl?, apiKey?, fetch?})` (LANTERN_URL and LANTERN_API_TOKEN by default) with one
// namespace per resource. Every method takes its path parameters first, then its body or options, as the server names them.
import * as Receipt from "../../schema/Receipt.ts"
import * as Settlement from "../../schema/Settlement.ts"
import type { OperationId, Operations } from "./Api.generated.ts"
import { call, type Input, type Output, type Settings, settingsOf } from "./Http.ts"
import {
  activity,
  follow,
  type RunActivity,
  type RunEvent,
  type RunFollowed,
  type RunToken,
  type SessionEvent,
  sessionEvents,
  stream,
  type StreamOptions,
  type TaskActivity,
  taskActivity,
  tokens,
  type WorkloadOutput,
  workloadLogs
} from "./Stream.ts"

export interface LanternOptions {
  /** Where the API is; LANTERN_URL, else http://127.0.0.1:8080. */
  readonly baseUrl?: string | undefined
  /** The API key sent as a bearer token; LANTERN_API_TOKEN when absent. */
  readonly apiKey?: string | undefined
  /** The fetch to use (a proxy, a test double); the runtime's own when absent. */
  readonly fetch?: typeof globalThis.fetch | undefined
}

type Body<K extends OperationId> = Operations[K]["body"]
type Query<K extends OperationId> = Operations[K]["query"]

/** What `runs.create` takes: the run's body, and the Idempotency-Key that makes a retried create answer the same run. */
export type CreateRunInput = Body<"createRun"> & { readonly idempotencyKey?: string | undefined }

/** What `receipts.verify` takes as keys: a raw Ed25519 public key (hex, base64), a key list, or the `{keys}` document. */
export type Keys = string | { readonly keys: ReadonlyArray<unknown> } | ReadonlyArray<unknown>

export class Lantern {
  readonly baseUrl: string
  readonly #settings: Settings

  constructor(options: LanternOptions = {}) {
    this.#settings = settingsOf(options)
    this.baseUrl = this.#settings.baseUrl
  }

  /** Calls any operation by its operationId (sdk/src/Api.generated.ts); the namespaces below are built on it. */
  request<K extends OperationId>(id: K, input: Input<K>): Promise<Output<K>> {
    return call(this.#settings, id, input)
  }

  readonly agents = {
    create: (body: Body<"createAgent">) => this.request("createAgent", { body }),
    list: () => this.request("listAgents", {}),
    get: (name: string) => this.request("getAgent", { params: { name } }),
    /** Publishes a new version (none when the spec is unchanged). */
    update: (name: string, body: Body<"updateAgent">) => this.request("updateAgent", { params: { name }, body }),
    versions: (name: string) => this.request("agentVersions", { params: { name } }),
    /** Draws the agent as a graph workflow (nodes and edges): publishes a new version whose runs run the graph. */
    setWorkflow: (name: string, graph: Body<"setAgentWorkflow">) =>
      this.request("setAgentWorkflow", { params: { name }, body: graph })
  }

  readonly runs = {
    create: ({ idempotencyKey, ...body }: CreateRunInput) =>
      this.request("createRun", {
        body: body as Body<"createRun">,
        headers: idempotencyKey === undefined ? {} : { "Idempotency-Key": idempotencyKey }
      }),
    /**
     * Starts a run and follows it in one request (ADR 0082): first `{type: "run", run}`, the run as `create` answers
     * it, then its events to the terminal one; a dropped connection is resumed after the last event received. The
     * key needs `runs:read` too.
     */
    follow: (
      { idempotencyKey, ...body }: CreateRunInput,
      options: StreamOptions = {}
    ): AsyncGenerator<RunFollowed, void, undefined> =>
      follow(
        this.#settings,
        body,
        idempotencyKey,
        options,
        async (id) => (await this.runs.get(id)).status !== "running"
      ),
    list: (query: Query<"listRuns"> = {}) => this.request("listRuns", { query }),
    get: (id: string) => this.request("getRun", { params: { id } }),
    /** The run's journal so far, as JSON. */
    events: (id: string) => this.request("runEvents", { params: { id } }),
    /**
     * The run's events, live, to its terminal event, as an async iterator; a dropped connection is resumed after the
     * last event received. `lastEventId` (an event's `position`) starts after that event.
     */
    stream: (id: string, options: StreamOptions = {}): AsyncGenerator<RunEvent, void, undefined> =>
      stream(this.#settings, id, options, async () => (await this.runs.get(id)).status !== "running"),
    /**
     * The live text of the run's model steps while they stream (`token`, `reset` on a failover), then its terminal
     * event (`end`); ends at once for a finished run. A preview: the journaled answer is authoritative.
     */
    tokens: (id: string, options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<RunToken, void, undefined> =>
      tokens(this.#settings, id, options),
    /**
     * Every run event of the tenant, live from now and without end (one small frame each: run, type, status after),
     * resumed after the last frame on a drop; `lastEventId` (a frame's `seq`) starts after that frame.
     */
    activity: (options: StreamOptions = {}): AsyncGenerator<RunActivity, void, undefined> =>
      activity(this.#settings, options),
    cancel: (id: string, body: Body<"cancelRun"> = {}) => this.request("cancelRun", { params: { id }, body }),
    approve: (id: string, stepId: string, body: Body<"approveStep">) =>
      this.request("approveStep", { params: { id, stepId }, body }),
    /** Sends a workflow's run the signal `name`: its code's next `ctx.waitForEvent(name)` receives `value`. */
    signal: (id: string, name: string, value: unknown) =>
      this.request("signalRun", { params: { id, name }, body: { value } }),
    /** The run's signed receipt (a partial one while it runs). */
    receipt: (id: string) => this.request("runReceipt", { params: { id } }),
    /** The journal export the receipt covers: JSON lines `{n, seq, envelope}`, as text. */
    journal: (id: string) => this.request("runJournal", { params: { id } }),
    forecast: (body: Body<"forecastRun">) => this.request("forecastRun", { body }),
    identityToken: (id: string, body: Body<"mintIdentityToken">) =>
      this.request("mintIdentityToken", { params: { id }, body })
  }

  readonly budgets = {
    getAgent: (name: string) => this.request("getAgentBudget", { params: { name } }),
    setAgent: (name: string, body: Body<"setAgentBudget">) =>
      this.request("setAgentBudget", { params: { name }, body }),
    usage: (name: string, query: Query<"agentUsage"> = {}) => this.request("agentUsage", { params: { name }, query }),
    getTenant: () => this.request("getTenantBudget", {}),
    setTenant: (body: Body<"setTenantBudget">) => this.request("setTenantBudget", { body })
  }

  readonly apiKeys = {
    /** The answer's `key` is shown only here. */
    create: (body: Body<"createApiKey">) => this.request("createApiKey", { body }),
    list: () => this.request("listApiKeys", {}),
    revoke: (id: string) => this.request("revokeApiKey", { params: { id } })
  }

  readonly secrets = {
    /** Stores a secret, or its next version when the name exists; the value is never shown again. */
    create: (body: Body<"createSecret">) => this.request("createSecret", { body }),
    list: () => this.request("listSecrets", {}),
    get: (name: string) => this.request("getSecret", { params: { name } }),
    delete: (name: string) => this.request("deleteSecret", { params: { name } })
  }

  /** MCP servers whose tools agents attach with `mcp` in their spec. */
  readonly mcp = {
    register: (body: Body<"registerMcpServer">) => this.request("registerMcpServer", { body }),
    list: () => this.request("listMcpServers", {}),
    tools: (name: string) => this.request("mcpServerTools", { params: { name } }),
    delete: (name: string) => this.request("deleteMcpServer", { params: { name } }),
    /** Well-known servers to attach in one call, each with what the caller must supply. */
    catalog: () => this.request("listMcpCatalog", {}),
    attach: (id: string, body: Body<"attachMcpCatalogEntry"> = {}) =>
      this.request("attachMcpCatalogEntry", { params: { id }, body })
  }

  /** Workloads (ADR 0046): an AgentSpec run in a sandbox that provides its isolation tier. */
  readonly workloads = {
    /** Starts a workload; a tier no configured backend provides is a LanternError 412 `isolation_unavailable`. */
    create: (body: Body<"createWorkload">) => this.request("createWorkload", { body }),
    list: () => this.request("listWorkloads", {}),
    get: (id: string) => this.request("getWorkload", { params: { id } }),
    events: (id: string) => this.request("workloadEvents", { params: { id } }),
    /** Its stdout and stderr until it ends, resumed across broken connections. */
    logs: (id: string, options: StreamOptions = {}): AsyncGenerator<WorkloadOutput, void, undefined> =>
      workloadLogs(this.#settings, id, options),
    terminate: (id: string) => this.request("terminateWorkload", { params: { id } }),
    /** The ended workload's signed receipt (a LanternError 409 `workload_not_ended` before); `receipts.verify` checks it. */
    receipt: (id: string) => this.request("workloadReceipt", { params: { id } }),
    /** The journal export its receipt covers: JSON lines `{n, seq, envelope}`, as text. */
    journal: (id: string) => this.request("workloadJournal", { params: { id } })
  }

  /** The operator queue (ADR 0054): tasks claimed by workers, highest priority first, retried, paused, canceled. */
  readonly tasks = {
    /** Queues a task; a repeat of a `dedupeKey` answers the task that holds it (`duplicateOf`). */
    submit: (body: Body<"submitTask">) => this.request("submitTask", { body }),
    list: (query: Query<"listTasks"> = {}) => this.request("listTasks", { query }),
    get: (id: string) => this.request("getTask", { params: { id } }),
    cancel: (id: string, body: Body<"cancelTask"> = {}) => this.request("cancelTask", { params: { id }, body }),
    retry: (id: string, body: Body<"retryTask"> = {}) => this.request("retryTask", { params: { id }, body }),
    requeue: (id: string) => this.request("requeueTask", { params: { id } }),
    /** The tenant's queue events, live and without end, as an async iterator. */
    stream: (options: StreamOptions = {}): AsyncGenerator<TaskActivity, void, undefined> =>
      taskActivity(this.#settings, options)
  }

  /** Dispatch: pause and resume the tenant's queue; its depth and the deployment's workers. */
  readonly dispatch = {
    get: () => this.request("getDispatch", {}),
    set: (body: Body<"setDispatch">) => this.request("setDispatch", { body })
  }

  /** The hosts the tenant's HTTP tools may call (empty: none). */
  readonly egress = {
    get: () => this.request("getEgress", {}),
    set: (hosts: ReadonlyArray<string>) => this.request("putEgress", { body: { hosts } })
  }

  /** Eval gates (ADR 0047): suites, eval runs scored server-side, and baselines per branch. */
  readonly evals = {
    saveSuite: (body: Body<"saveEvalSuite">) => this.request("saveEvalSuite", { body }),
    listSuites: (query: Query<"listEvalSuites"> = {}) => this.request("listEvalSuites", { query }),
    getSuite: (id: string) => this.request("getEvalSuite", { params: { id } }),
    deleteSuite: (id: string) => this.request("deleteEvalSuite", { params: { id } }),
    /** Starts an eval run: every case a real run of the candidate version; answers its id at once. */
    run: (body: Body<"startEvalRun">) => this.request("startEvalRun", { body }),
    /** An eval run; with `{gate: "true"}` a regressed one fails with 422 eval_regressed. */
    get: (id: string, query: Query<"getEvalRun"> = {}) => this.request("getEvalRun", { params: { id }, query }),
    /** The progress stream's whole text (Server-Sent Events), once the eval run has finished. */
    stream: (id: string) => this.request("evalRunStream", { params: { id } }),
    setBaseline: (body: Body<"setEvalBaseline">) => this.request("setEvalBaseline", { body }),
    baselines: (query: Query<"listEvalBaselines">) => this.request("listEvalBaselines", { query }),
    giveFeedback: (runId: string, body: Body<"giveRunFeedback">) =>
      this.request("giveRunFeedback", { params: { id: runId }, body }),
    runFeedback: (runId: string) => this.request("runFeedback", { params: { id: runId } }),
    agentFeedback: (name: string) => this.request("agentFeedback", { params: { name } }),
    /** The agent's recent failed and low-scored runs, to replay with `run({rehearsal, agentVersion})`. */
    rehearse: (body: Body<"rehearseRuns">) => this.request("rehearseRuns", { body })
  }

  /** A/B experiments (ADR 0058): a split that chooses the version of every unpinned run of an agent. */
  readonly experiments = {
    start: (body: Body<"startExperiment">) => this.request("startExperiment", { body }),
    list: (query: Query<"listExperiments"> = {}) => this.request("listExperiments", { query }),
    /** The experiment with each arm's figures (reading it may conclude it by auto-promotion). */
    get: (id: string) => this.request("getExperiment", { params: { id } }),
    conclude: (id: string, body: Body<"concludeExperiment"> = {}) =>
      this.request("concludeExperiment", { params: { id }, body })
  }

  /** The marketplace (ADR 0059): listings of published agents, forks, and invocations settled with signed receipts. */
  readonly marketplace = {
    publish: (body: Body<"publishListing">) => this.request("publishListing", { body }),
    list: (query: Query<"listListings"> = {}) => this.request("listListings", { query }),
    get: (slug: string) => this.request("getListing", { params: { slug } }),
    unpublish: (slug: string) => this.request("unpublishListing", { params: { slug } }),
    fork: (slug: string, body: Body<"forkListing"> = {}) => this.request("forkListing", { params: { slug }, body }),
    /** Runs the listing in the seller's tenant; the answer holds the output and a signed settlement receipt. */
    invoke: (slug: string, input: unknown) => this.request("invokeListing", { params: { slug }, body: { input } }),
    invocations: (query: Query<"listInvocations"> = {}) => this.request("listInvocations", { query })
  }

  /** Channel connections (ADR 0050): a platform's webhook bound to an agent, secrets by reference. */
  readonly channels = {
    create: (body: Body<"createChannel">) => this.request("createChannel", { body }),
    list: () => this.request("listChannels", {}),
    get: (id: string) => this.request("getChannel", { params: { id } }),
    update: (id: string, body: Body<"updateChannel">) => this.request("updateChannel", { params: { id }, body }),
    delete: (id: string) => this.request("deleteChannel", { params: { id } })
  }

  /** Conversations (ADR 0050): every channel thread, and API sessions driven from here. */
  readonly sessions = {
    /** Opens an API session with an agent. */
    create: (body: Body<"createSession">) => this.request("createSession", { body }),
    list: () => this.request("listSessions", {}),
    get: (id: string) => this.request("getSession", { params: { id } }),
    /** A turn: the agent answers with the conversation so far; `idempotencyKey` makes a retry the same turn. */
    send: (id: string, { idempotencyKey, ...body }: Body<"sendSessionMessage"> & { idempotencyKey?: string }) =>
      this.request("sendSessionMessage", {
        params: { id },
        body: body as Body<"sendSessionMessage">,
        headers: idempotencyKey === undefined ? {} : { "Idempotency-Key": idempotencyKey }
      }),
    /** The session's journal, live and without end, as an async iterator. */
    stream: (id: string, options: StreamOptions = {}): AsyncGenerator<SessionEvent, void, undefined> =>
      sessionEvents(this.#settings, id, options)
  }

  /** NATS ingest (ADR 0051): rules routing events published on lantern.ingest.<tenant>.<source>, and dead letters. */
  readonly ingest = {
    createRule: (body: Body<"createIngestRule">) => this.request("createIngestRule", { body }),
    rules: () => this.request("listIngestRules", {}),
    deleteRule: (id: string) => this.request("deleteIngestRule", { params: { id } }),
    dead: (query: Query<"listIngestDead"> = {}) => this.request("listIngestDead", { query }),
    sources: () => this.request("listIngestSources", {})
  }

  /** Sensor events (ADR 0056): work dropped into the operator queue, deduped for good by event id and dedupe key. */
  readonly sensors = {
    /** 201 with what it created, or 200 `{accepted: false, duplicateOf}` for a repeat. */
    post: (body: Body<"postSensorEvent">) => this.request("postSensorEvent", { body }),
    list: (query: Query<"listSensorEvents"> = {}) => this.request("listSensorEvents", { query })
  }

  /** Workflows on the operator queue (ADR 0056): goal-loop and pr-lifecycle, one per (template, instanceKey). */
  readonly queueWorkflows = {
    create: (body: Body<"createQueueWorkflow">) => this.request("createQueueWorkflow", { body }),
    list: (query: Query<"listQueueWorkflows"> = {}) => this.request("listQueueWorkflows", { query }),
    get: (id: string) => this.request("getQueueWorkflow", { params: { id } })
  }

  /** Snapshots and reports of the operator queue (ADR 0056), as JSON with their Markdown in `markdown`. */
  readonly reports = {
    snapshot: (label: string) => this.request("createSnapshot", { body: { label } }),
    getSnapshot: (id: string) => this.request("getSnapshot", { params: { id } }),
    latest: () => this.request("latestReport", {}),
    /** The report of [from, to): each an ISO time or a snapshot id. */
    create: (body: Body<"createReport">) => this.request("createReport", { body })
  }

  /** Schedules (ADR 0055): agent runs or queue tasks on a cron expression or an interval, fired once per due slot. */
  readonly schedules = {
    create: (body: Body<"createSchedule">) => this.request("createSchedule", { body }),
    list: () => this.request("listSchedules", {}),
    get: (id: string) => this.request("getSchedule", { params: { id } }),
    /** Replaces the definition whole. */
    update: (id: string, body: Body<"updateSchedule">) => this.request("updateSchedule", { params: { id }, body }),
    delete: (id: string) => this.request("deleteSchedule", { params: { id } }),
    /** Fires now (a manual fire, journaled) and starts its run or task. */
    fire: (id: string) => this.request("fireSchedule", { params: { id } })
  }

  /** Files a task's attempts produced (ADR 0057), from the JetStream Object Store. */
  readonly artifacts = {
    /** The artifact at `path` (relative to the task's artifact root) as text; a LanternError 404 when absent. */
    get: (taskId: string, path: string) => this.request("getTaskArtifact", { params: { id: taskId, path } })
  }

  /** A2A (ADR 0045): which agents are public, and their agent cards. */
  readonly a2a = {
    /** Makes an agent public (its card readable by anyone, its A2A endpoint open to the tenant's keys) or private. */
    setVisibility: (name: string, isPublic: boolean) =>
      this.request("setAgentVisibility", { params: { name }, body: { public: isPublic } }),
    /** A public agent's A2A AgentCard; `tenant` when several tenants publish an agent of that name. */
    agentCard: (name: string, query: Query<"agentCard"> = {}) => this.request("agentCard", { params: { name }, query }),
    /** The deployment's AgentCard (`/.well-known/agent-card.json`): its public agents as skills. */
    deploymentCard: () => this.request("deploymentCard", {})
  }

  readonly receipts = {
    /**
     * Verifies a receipt offline, with the checks the server runs (schema/Receipt.ts): its Ed25519 signature under
     * `keys`, and the journal export (`runs.journal`'s text, or its lines) against the digest, extent, status, agent
     * and totals it states. No request is made. Input that is no receipt, journal or key throws a TypeError.
     */
    verify: (receipt: Receipt.Receipt | string, journal: string | ReadonlyArray<unknown>, keys: Keys): Verdict => {
      try {
        const r = typeof receipt === "string" ? Receipt.parseJson(receipt, "the receipt") as Receipt.Receipt : receipt
        const lines = typeof journal === "string" ? Receipt.parseJsonl(journal) : Receipt.parseLines(journal)
        const published = typeof keys === "string"
          ? Receipt.parseKeys(keys)
          : Receipt.parseKeys(JSON.stringify(Array.isArray(keys) ? { keys } : keys))
        return Receipt.verify(r, lines, published)
      } catch (e) {
        if (e instanceof Receipt.BadInput) throw new TypeError(e.message)
        throw e
      }
    },
    /**
     * Verifies a marketplace settlement receipt offline (schema/Settlement.ts): its fields and its Ed25519 signature
     * under `keys`. No request is made. Keys that are no keys throw a TypeError.
     */
    verifySettlement: (receipt: unknown, keys: Keys): SettlementVerdict => {
      try {
        const published = typeof keys === "string"
          ? Receipt.parseKeys(keys)
          : Receipt.parseKeys(JSON.stringify(Array.isArray(keys) ? { keys } : keys))
        return Settlement.verifySettlement(receipt, published)
      } catch (e) {
        if (e instanceof Receipt.BadInput) throw new TypeError(e.message)
        throw e
      }
    },
    /** Asks the server to verify (its published keys, and the run's stored journal for a receipt it signed). */
    verifyOnServer: (body: Body<"verifyReceipt">) => this.request("verifyReceipt", { body }),
    /** The public keys that verify receipts (`/.well-known/lantern-receipts`), retired ones included. */
    keys: () => this.request("receiptKeys", {})
  }

  readonly identity = {
    issuer: () => this.request("identityIssuer", {}),
    verify: (body: Body<"verifyIdentityToken">) => this.request("verifyIdentityToken", { body })
  }

  readonly tenants = {
    /** Needs `admin`; the answer's owner key is shown only here. */
    create: (body: Body<"createTenant">) => this.request("createTenant", { body })
  }

  readonly audit = {
    list: (query: Query<"listAudit"> = {}) => this.request("listAudit", { query })
  }

  readonly admin = {
    rotateSigningKey: () => this.request("rotateSigningKey", {}),
    rewrapSecrets: () => this.request("rewrapSecrets", {}),
    deadLetters: (query: Query<"listDeadLetters"> = {}) => this.request("listDeadLetters", { query })
  }
}

export type Verdict = Receipt.Verdict
export type SettlementVerdict = ReturnType<typeof Settlement.verifySettlement>
