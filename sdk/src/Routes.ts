// Which method of the SDK calls each operation of the API: a table over every operationId of the generated types, so
// an operation without a method does not compile, and tests/sdk.test.ts checks it against the served document.
import type { OperationId } from "./Api.generated.ts"

/** The SDK method (as `namespace.method` of a `Lantern`) that reaches each operation. */
export const ROUTES: { readonly [K in OperationId]: string } = {
  createAgent: "agents.create",
  listAgents: "agents.list",
  getAgent: "agents.get",
  updateAgent: "agents.update",
  agentVersions: "agents.versions",
  setAgentBudget: "budgets.setAgent",
  getAgentBudget: "budgets.getAgent",
  agentUsage: "budgets.usage",
  setTenantBudget: "budgets.setTenant",
  getTenantBudget: "budgets.getTenant",
  createRun: "runs.create",
  listRuns: "runs.list",
  forecastRun: "runs.forecast",
  getRun: "runs.get",
  runEvents: "runs.events",
  runStream: "runs.stream",
  cancelRun: "runs.cancel",
  approveStep: "runs.approve",
  runReceipt: "runs.receipt",
  runJournal: "runs.journal",
  mintIdentityToken: "runs.identityToken",
  verifyReceipt: "receipts.verifyOnServer",
  receiptKeys: "receipts.keys",
  rotateSigningKey: "admin.rotateSigningKey",
  identityIssuer: "identity.issuer",
  verifyIdentityToken: "identity.verify",
  createTenant: "tenants.create",
  createApiKey: "apiKeys.create",
  listApiKeys: "apiKeys.list",
  revokeApiKey: "apiKeys.revoke",
  createSecret: "secrets.create",
  listSecrets: "secrets.list",
  getSecret: "secrets.get",
  deleteSecret: "secrets.delete",
  rewrapSecrets: "admin.rewrapSecrets",
  listAudit: "audit.list",
  listDeadLetters: "admin.deadLetters"
}
