// `lantern api-keys create|list|revoke`, `lantern tenants create` and `lantern audit`: who may call the API and
// what was done with it. A key's value is printed once, by the command that makes it; lists never show it.
import { Console, Effect, Option } from "effect"
import { Command } from "effect/cli"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import * as Format from "./Format.ts"
import * as Input from "./Input.ts"

const print = <A>(json: boolean, reply: Client.Reply<A>, human: (a: A) => string) =>
  Console.log(json ? JSON.stringify(reply.body, null, 2) : human(reply.value))

// ---- api-keys ----

const keysCreate = Command.make(
  "create",
  { name: Input.keyName, scopes: Input.scopes, expires: Input.expires, json: Input.json },
  Effect.fn(function*(i) {
    const body = {
      name: i.name,
      scopes: [...new Set(i.scopes)],
      ...Option.match(i.expires, { onNone: () => ({}), onSome: (expiresAt) => ({ expiresAt }) })
    }
    const reply = yield* Client.call(endpoints.createApiKey, { body })
    yield* print(i.json, reply, Format.newKey)
  })
).pipe(
  Command.withDescription(
    "Make an API key of this tenant with the given scopes; its value is printed once (needs keys:write)"
  ),
  Command.withExamples([
    { command: "lantern api-keys create --name ci --scope runs:write --scope runs:read --expires 2027-01-01T00:00:00Z" }
  ])
)

const keysList = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listApiKeys, {})
    yield* print(i.json, reply, (l) => Format.keyList(l.items))
  })
).pipe(
  Command.withDescription("List this tenant's live keys: id, name, scopes, expiry, last 4 characters; never a key"),
  Command.withAlias("ls")
)

const keysRevoke = Command.make(
  "revoke",
  { id: Input.keyIdArgument },
  Effect.fn(function*(i) {
    yield* Client.call(endpoints.revokeApiKey, { params: { id: i.id } })
    yield* Console.log(`revoked ${i.id}: it is refused at once on this host, within 30 s on the others`)
  })
).pipe(Command.withDescription("Revoke a key of this tenant (needs keys:write)"))

export const apiKeys = Command.make("api-keys").pipe(
  Command.withDescription("Make, list and revoke scoped API keys"),
  Command.withSubcommands([keysCreate, keysList, keysRevoke])
)

// ---- tenants ----

const tenantsCreate = Command.make(
  "create",
  { name: Input.tenantNameArgument, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.createTenant, { body: { name: i.name } })
    yield* print(
      i.json,
      reply,
      (t) => Format.newTenant({ tenant: t.tenant, key: { ...t.key, last4: t.key.key.slice(-4) } })
    )
  })
).pipe(Command.withDescription("Make a tenant and print its owner key (scope *) once (needs an operator admin key)"))

export const tenants = Command.make("tenants").pipe(
  Command.withDescription("The deployment's tenants"),
  Command.withSubcommands([tenantsCreate])
)

// ---- audit ----

export const audit = Command.make(
  "audit",
  { action: Input.auditAction, since: Input.since, limit: Input.auditLimit, cursor: Input.cursor, json: Input.json },
  Effect.fn(function*(i) {
    const query = {
      action: Option.getOrUndefined(i.action),
      since: Option.getOrUndefined(i.since),
      limit: Option.getOrUndefined(Option.map(i.limit, String)),
      cursor: Option.getOrUndefined(i.cursor)
    }
    const reply = yield* Client.call(endpoints.listAudit, { query })
    yield* print(i.json, reply, Format.auditPage)
  })
).pipe(
  Command.withDescription("This tenant's audit log, newest first, one line per entry (needs audit:read)"),
  Command.withExamples([{ command: "lantern audit --action scope.denied --since 2026-11-21" }])
)
