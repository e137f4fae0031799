// `lantern channels create|list|get|update|delete` and `lantern sessions open|list|get|send|follow` (ADR 0050): the
// platform connections and the conversations they hold, from a terminal. A connection is assembled from flags or read
// from a YAML/JSON file and checked with the API's schema, and for the verification material its kind needs, before
// anything is sent (exit 2 naming the field). `sessions send --wait` prints the agent's answer to that turn.
import { Console, Effect, Option, Runtime, Schema, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Channel from "../../schema/Channel.ts"
import { endpoints } from "../Api.ts"
import * as Endpoint from "../Endpoint.ts"
import * as Client from "./Client.ts"
import { decodeStrict, invalid, jsonFlag, readYamlFile } from "./Flags.ts"
import * as Input from "./Input.ts"

const idOf = (schema: Schema.Top & { readonly DecodingServices: never }, name: string, example: string) =>
  Argument.String("id").pipe(
    Argument.withDescription(`The ${name}'s id (${example})`),
    Argument.withMetavar("ID"),
    Argument.mapEffect((id) =>
      Schema.is(schema)(id) ? Effect.succeed(id) : Effect.fail(invalid("ID", `expected a ${name} id like ${example}`))
    )
  )
const channelId = idOf(Channel.ChannelId, "channel", "ch_01j…")
const sessionId = idOf(Channel.SessionId, "session", "ses_0f3a…")

const print = (json: boolean, body: unknown, text: string) => Console.log(json ? JSON.stringify(body, null, 2) : text)

// ---- channels ----

const channelSummary = (c: Channel.ChannelView): string =>
  [
    `${c.id}  ${c.kind}  ${c.name}  → ${c.agentName}`,
    `  webhook URL: ${c.webhookUrl}`,
    ...Object.entries(c.config).map(([k, v]) => `  config.${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}`),
    ...Object.entries(c.secrets).map(([k, v]) => `  secrets.${k}: ${String(v)}`)
  ].join("\n")

const file = Flag.String("file").pipe(
  Flag.withDescription("The connection as YAML or JSON ({kind, name, agentName, config?, secrets?}), instead of flags"),
  Flag.withMetavar("FILE"),
  Flag.optional
)
const kind = Flag.Literals("kind", Channel.KINDS).pipe(Flag.withDescription("The platform"), Flag.optional)
const name = Flag.String("name").pipe(Flag.withDescription("The connection's name"), Flag.optional)
const agent = Flag.String("agent").pipe(Flag.withDescription("The agent that answers its messages"), Flag.optional)
const config = jsonFlag(
  "config",
  "Settings that are not secret, as JSON (publicUrl, apiBaseUrl, applicationId, phoneNumberId, accountSid, from, smtpUrl, smtpUser, allowedOrigins)"
)
const secrets = jsonFlag(
  "secrets",
  "Secret references as JSON, e.g. {\"signingSecret\":\"lantern.secret://slack-signing\"} (store values with POST /v1/secrets)"
)

/** The connection from `--file` or from the flags (not both), as a plain object not yet decoded. */
const connectionOf = (i: {
  readonly file: Option.Option<string>
  readonly kind?: Option.Option<Channel.ChannelKind>
  readonly name: Option.Option<string>
  readonly agent: Option.Option<string>
  readonly config: Option.Option<unknown>
  readonly secrets: Option.Option<unknown>
}) =>
  Effect.gen(function*() {
    const flags = {
      ...(i.kind === undefined ? {} : Option.match(i.kind, { onNone: () => ({}), onSome: (kind) => ({ kind }) })),
      ...Option.match(i.name, { onNone: () => ({}), onSome: (name) => ({ name }) }),
      ...Option.match(i.agent, { onNone: () => ({}), onSome: (agentName) => ({ agentName }) }),
      ...Option.match(i.config, { onNone: () => ({}), onSome: (config) => ({ config }) }),
      ...Option.match(i.secrets, { onNone: () => ({}), onSome: (secrets) => ({ secrets }) })
    }
    if (Option.isNone(i.file)) return flags as Record<string, unknown>
    if (Object.keys(flags).length > 0) {
      return yield* invalid("--file", `give the connection either in --file or with flags, not both`)
    }
    const value = yield* readYamlFile("--file", i.file.value)
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return yield* invalid("--file", `${i.file.value}: expected a mapping {kind, name, agentName, config, secrets}`)
    }
    return value as Record<string, unknown>
  })

/** Refuses, naming the field, a connection its kind could not verify or answer with (as the API would). */
const requireMaterial = (c: Channel.NewChannel | (Channel.ChannelUpdate & { readonly kind: Channel.ChannelKind })) => {
  const missing = Channel.missing(c.kind, c)
  return missing.length === 0
    ? Effect.void
    : Effect.fail(invalid(missing[0]!, `a ${c.kind} connection needs ${missing.join(", ")} (fail-closed)`))
}

const create = Command.make(
  "create",
  { file, kind, name, agent, config, secrets, json: Input.json },
  Effect.fn(function*(i) {
    const raw = yield* connectionOf(i)
    const body = yield* decodeStrict(Channel.NewChannel, "channel", raw)
    yield* requireMaterial(body)
    const reply = yield* Client.call(endpoints.createChannel, { body })
    yield* print(i.json, reply.body, channelSummary(reply.value))
  })
).pipe(
  Command.withDescription("Connect a platform to an agent; prints the webhook URL to paste into the platform"),
  Command.withExamples([
    {
      command:
        "lantern channels create --kind telegram --name support --agent helper --secrets '{\"secretToken\":\"lantern.secret://tg-hook\",\"botToken\":\"lantern.secret://tg-bot\"}'",
      description: "A Telegram bot answered by the agent `helper`"
    },
    { command: "lantern channels create --file slack.yaml" }
  ])
)

const list = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listChannels, {})
    yield* print(
      i.json,
      reply.body,
      reply.value.items.map((c) => `${c.id}  ${c.kind.padEnd(8)}  ${c.name}  → ${c.agentName}`).join("\n")
    )
  })
).pipe(Command.withDescription("List the channel connections (secrets as references only)"), Command.withAlias("ls"))

const get = Command.make(
  "get",
  { id: channelId, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getChannel, { params: { id: i.id } })
    yield* print(i.json, reply.body, channelSummary(reply.value))
  })
).pipe(Command.withDescription("Show a connection: its webhook URL, settings and secret references"))

const update = Command.make(
  "update",
  { id: channelId, file, name, agent, config, secrets, json: Input.json },
  Effect.fn(function*(i) {
    const current = (yield* Client.call(endpoints.getChannel, { params: { id: i.id } })).value
    const given = yield* connectionOf(i)
    // flags change what they name and keep the rest; a file replaces the connection (its kind may not change)
    const raw = Option.isSome(i.file)
      ? given
      : { name: current.name, agentName: current.agentName, config: current.config, secrets: current.secrets, ...given }
    const { kind: fileKind, ...rest } = raw
    if (fileKind !== undefined && fileKind !== current.kind) {
      return yield* invalid("kind", `a connection's kind is fixed (this one is ${current.kind})`)
    }
    const body = yield* decodeStrict(Channel.ChannelUpdate, "channel", rest)
    yield* requireMaterial({ ...body, kind: current.kind })
    const reply = yield* Client.call(endpoints.updateChannel, { params: { id: i.id }, body })
    yield* print(i.json, reply.body, channelSummary(reply.value))
  })
).pipe(
  Command.withDescription(
    "Change a connection's name, agent, settings or secret references (flags change what they name; --file replaces it)"
  )
)

const remove = Command.make(
  "delete",
  { id: channelId },
  Effect.fn(function*(i) {
    yield* Client.call(endpoints.deleteChannel, { params: { id: i.id } })
    yield* Console.log(`deleted ${i.id}: its webhook answers 404 from now on`)
  })
).pipe(Command.withDescription("Delete a connection"), Command.withAlias("rm"))

export const channels = Command.make("channels").pipe(
  Command.withDescription("Connect Slack, Discord, Telegram, WhatsApp, Twilio, email or webchat to agents"),
  Command.withSubcommands([create, list, get, update, remove])
)

// ---- sessions ----

const turnLine = (t: Channel.TurnView) =>
  [
    `  #${t.turn} ${t.from}: ${t.text}`,
    `     ${t.status}${t.runId === null ? "" : ` (${t.runId})`}${
      t.delivery === null ? "" : `, delivery ${t.delivery}`
    }${t.costUsd > 0 ? `, $${t.costUsd.toFixed(6)}` : ""}`,
    ...(t.answer === null ? [] : [`     → ${t.answer}`])
  ].join("\n")

const sessionSummary = (s: Channel.SessionView) =>
  [
    `${s.id}  ${s.kind}  ${s.thread}  → ${s.agentName}${s.channelId === null ? "" : `  (${s.channelId})`}`,
    `  ${s.turns.length} turn(s), ${s.runs.length} run(s), $${s.costUsd.toFixed(6)}`,
    ...s.turns.map(turnLine)
  ].join("\n")

const open = Command.make(
  "open",
  { agent: Input.agentNameFlag("agent", "The agent to talk to"), json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.createSession, { body: { agentName: i.agent } })
    yield* print(i.json, reply.body, reply.value.id)
  })
).pipe(Command.withDescription("Open an API session with an agent; prints its id"))

const sessionsList = Command.make(
  "list",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.listSessions, {})
    yield* print(
      i.json,
      reply.body,
      reply.value.items.map((s) => `${s.id}  ${s.kind.padEnd(8)}  ${s.turns.length} turn(s)  ${s.thread}`).join("\n")
    )
  })
).pipe(Command.withDescription("List conversations, most recently active first"), Command.withAlias("ls"))

const sessionsGet = Command.make(
  "get",
  { id: sessionId, json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.getSession, { params: { id: i.id } })
    yield* print(i.json, reply.body, sessionSummary(reply.value))
  })
).pipe(Command.withDescription("Show a conversation: its turns, answers, deliveries, runs and cost"))

interface Frame {
  readonly type: string
  readonly payload: { readonly turn?: number; readonly text?: string; readonly status?: string }
}

/**
 * The session's journal as it grows, from `after` (an SSE id) on, until `stop` says so; a dropped connection is
 * resumed with Last-Event-ID, a few times.
 */
const followSession = (id: string, stop: (f: Frame) => boolean, each: (f: Frame) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const client = yield* Client.Client
    let last: string | null = null
    let done = false
    for (let attempt = 0; !done && attempt < 6; attempt++) {
      yield* client.sse(Endpoint.pathOf(endpoints.sessionStream.path, { id }), last).pipe(
        Stream.filter((m) => m.event !== "error" && m.data !== ""),
        Stream.map((m) => ({ id: m.id, frame: JSON.parse(m.data) as Frame })),
        Stream.takeUntil(({ frame }) => stop(frame)),
        Stream.runForEach(({ frame, id: position }) =>
          Effect.gen(function*() {
            if (position !== null) last = position
            yield* each(frame)
            if (stop(frame)) done = true
          })
        ),
        Effect.catchTag("Unreachable", (e) => attempt < 5 ? Effect.sleep("500 millis") : Effect.fail(e))
      )
    }
  })

/** `send --wait` on a turn that did not succeed: the answer is printed already, this only sets the exit code. */
export class TurnNotAnswered extends Schema.TaggedError<TurnNotAnswered>()("TurnNotAnswered", {
  id: Schema.String,
  turn: Schema.Int,
  status: Schema.String
}) {
  override get message() {
    return `turn ${this.turn} of ${this.id} ended ${this.status}`
  }
  override readonly [Runtime.errorReported] = false
}

const frameLine = (f: Frame) =>
  `${f.type}${f.payload.turn === undefined ? "" : ` #${f.payload.turn}`}${
    f.payload.status === undefined ? "" : ` ${f.payload.status}`
  }${f.payload.text === undefined ? "" : `: ${f.payload.text}`}`

const send = Command.make(
  "send",
  {
    id: sessionId,
    text: Argument.String("text").pipe(Argument.withDescription("The message"), Argument.withMetavar("TEXT")),
    idempotencyKey: Input.idempotencyKey,
    wait: Flag.Boolean("wait").pipe(
      Flag.withDescription("Wait for the agent's answer to this turn and print it (exit 1 unless it succeeded)"),
      Flag.withDefault(false)
    ),
    json: Input.json
  },
  Effect.fn(function*(i) {
    if (i.text.length === 0 || i.text.length > 32_000) return yield* invalid("TEXT", "1 to 32000 characters")
    const reply = yield* Client.call(endpoints.sendSessionMessage, {
      params: { id: i.id },
      headers: Option.match(i.idempotencyKey, { onNone: () => ({}), onSome: (k) => ({ "idempotency-key": k }) }),
      body: { text: i.text }
    })
    const turn = reply.value.turn
    if (!i.wait) {
      return yield* print(i.json, reply.body, `turn ${turn}${reply.value.duplicate ? " (already received)" : ""}`)
    }
    let answer: Frame | null = null
    yield* followSession(
      i.id,
      (f) => f.type === "TurnAnswered" && f.payload.turn === turn,
      (f) => Effect.sync(() => (answer = f.type === "TurnAnswered" && f.payload.turn === turn ? f : answer))
    )
    const a = answer as Frame | null
    yield* print(i.json, a?.payload ?? null, a?.payload.text ?? "(no answer)")
    if (a?.payload.status !== "succeeded") {
      return yield* new TurnNotAnswered({ id: i.id, turn, status: a?.payload.status ?? "unanswered" })
    }
  })
).pipe(
  Command.withDescription("Say something in a session: a turn the agent answers with the conversation so far"),
  Command.withExamples([{ command: "lantern sessions send ses_0f3a… 'what is my name?' --wait" }])
)

const follow = Command.make(
  "follow",
  { id: sessionId, json: Input.json },
  (i) =>
    followSession(
      i.id,
      () => false,
      (f) => Console.log(i.json ? JSON.stringify(f) : frameLine(f))
    )
).pipe(Command.withDescription("Print a session's journal from its start, live, until interrupted"))

export const sessions = Command.make("sessions").pipe(
  Command.withDescription("Talk to agents in API sessions and read every channel conversation"),
  Command.withSubcommands([open, sessionsList, sessionsGet, send, follow])
)
