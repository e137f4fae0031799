// @lantern/sdk: the TypeScript client of Lantern's HTTP API. Its types are generated from the server's OpenAPI
// document (Api.generated.ts), so every field is named as the server names it.
import type { Operations } from "./Api.generated.ts"

export type { Check, Line as JournalLine, PublicKey } from "../../schema/Receipt.ts"
export { type OperationId, type Operations, operations } from "./Api.generated.ts"
export { type Issue, isLanternError, LanternError } from "./Errors.ts"
export {
  type CreateRunInput,
  type Keys,
  Lantern,
  type LanternOptions,
  type SettlementVerdict,
  type Verdict
} from "./Lantern.ts"
export { ROUTES } from "./Routes.ts"
export type { RunActivity, RunEvent, RunFollowed, RunToken, StreamOptions, TaskActivity } from "./Stream.ts"
export {
  type ApprovalAnswer,
  type ChildResult,
  type ChildTarget,
  defineWorkflow,
  type LlmAnswer,
  type LlmRequest,
  type Received,
  type StepInfo,
  type StepOptions,
  type Workflow,
  type WorkflowContext
} from "./Workflow.ts"

export type Agent = Operations["getAgent"]["response"]
export type AgentVersion = Operations["agentVersions"]["response"]["items"][number]
export type AgentSpec = Operations["createAgent"]["body"]["spec"]
export type Run = Operations["getRun"]["response"]
export type RunPage = Operations["listRuns"]["response"]
export type Receipt = Operations["runReceipt"]["response"]
export type Forecast = Operations["forecastRun"]["response"]
export type Budget = Operations["getTenantBudget"]["response"]
export type Usage = Operations["agentUsage"]["response"]
export type ApiKey = Operations["listApiKeys"]["response"]["items"][number]
export type NewApiKey = Operations["createApiKey"]["response"]
export type Secret = Operations["getSecret"]["response"]
