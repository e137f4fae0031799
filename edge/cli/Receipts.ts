// `lantern receipts verify|get|journal` and `lantern keys rotate|list`. Verification is offline: the receipt,
// the journal export and the public key (--key, or the server's /.well-known/lantern-receipts) are all it needs.
import { Console, Data, Effect, FileSystem, Option, Runtime } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as Verify from "../../actors/receipts/Verify.ts"
import * as Marketplace from "../../schema/Marketplace.ts"
import { endpoints } from "../Api.ts"
import * as Client from "./Client.ts"
import * as Input from "./Input.ts"

/** A receipt that does not verify: exit 1, naming the checks that failed. */
export class ReceiptInvalid extends Data.TaggedError("ReceiptInvalid")<{ readonly message: string }> {
  override readonly [Runtime.errorExitCode] = 1
}

/** Input that cannot be verified at all (a missing file, malformed JSON): a usage error, exit 2. */
const badInput = (message: string) => new CliError.ValidationError({ message })

const readText = (what: string, path: string) =>
  FileSystem.FileSystem.use((fs) => fs.readFileString(path)).pipe(
    Effect.mapError((e) =>
      badInput(
        `${what}: ${e.reason._tag === "NotFound" ? `no such file: ${path}` : `cannot read ${path}: ${e.message}`}`
      )
    )
  )

const parsing = <A>(what: string, f: () => A) =>
  Effect.try({ try: f, catch: (e) => badInput(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

/** --key: a file holding a raw key or the well-known document, else the key itself (hex or base64). */
const keysFrom = (key: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isSome(key)) {
      const fs = yield* FileSystem.FileSystem
      const isFile = yield* fs.exists(key.value).pipe(Effect.orElseSucceed(() => false))
      const text = isFile ? yield* readText("--key", key.value) : key.value
      return yield* parsing("--key", () => Verify.parseKeys(text))
    }
    const client = yield* Client.Client
    const reply = yield* client.probe("/.well-known/lantern-receipts")
    if (reply.status !== 200) {
      return yield* new ReceiptInvalid({
        message:
          `cannot fetch the public keys from ${client.baseUrl}/.well-known/lantern-receipts (HTTP ${reply.status}); pass --key`
      })
    }
    return yield* parsing(`the keys at ${client.baseUrl}`, () => Verify.parseKeys(reply.text))
  })

const receiptFile = Argument.String("receipt").pipe(
  Argument.withDescription("The receipt (JSON)"),
  Argument.withMetavar("RECEIPT")
)
const journalFile = Argument.String("journal").pipe(
  Argument.withDescription("The run's or workload's journal export (JSONL)"),
  Argument.withMetavar("JOURNAL")
)
const keyFlag = Flag.String("key").pipe(
  Flag.withDescription(
    "The public key: hex or base64 of its 32 bytes (one that begins with - as --key=KEY), or a file with it or with the /.well-known/lantern-receipts JSON (default: fetched from LANTERN_URL)"
  ),
  Flag.withMetavar("KEY"),
  Flag.optional
)

const verify = Command.make(
  "verify",
  { receipt: receiptFile, journal: journalFile, key: keyFlag, json: Input.json },
  Effect.fn(function*(i) {
    const receipt = yield* Effect.flatMap(
      readText("RECEIPT", i.receipt),
      (text) => parsing(i.receipt, () => Verify.parseReceiptText(text))
    )
    const lines = yield* Effect.flatMap(
      readText("JOURNAL", i.journal),
      (text) => parsing(i.journal, () => Verify.parseJsonl(text))
    )
    const keys = yield* keysFrom(i.key)
    const verdict = Verify.verify(receipt, lines, keys)
    yield* Console.log(
      i.json
        ? JSON.stringify(verdict, null, 2)
        : [
          ...verdict.checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.message}`),
          "",
          verdict.valid ? `receipt of ${receipt.runId} is valid` : ""
        ].join("\n").trimEnd()
    )
    if (!verdict.valid)
      return yield* new ReceiptInvalid({
        message: `receipt of ${receipt.runId} is NOT valid: ${Verify.failureOf(verdict)}`
      })
  })
).pipe(
  Command.withDescription(
    "Verify a run's or a workload's receipt against its exported journal, offline; exits 0 valid, 1 invalid, 2 bad input"
  ),
  Command.withExamples([
    { command: "lantern receipts verify receipt.json journal.jsonl --key keys.json", description: "Fully offline" },
    {
      command: "lantern receipts verify receipt.json journal.jsonl",
      description: "Keys from LANTERN_URL/.well-known/lantern-receipts"
    }
  ])
)

const verifySettlement = Command.make(
  "verify-settlement",
  { receipt: receiptFile, key: keyFlag, json: Input.json },
  Effect.fn(function*(i) {
    const value = yield* Effect.flatMap(
      readText("RECEIPT", i.receipt),
      (text) => parsing(i.receipt, () => JSON.parse(text) as unknown)
    )
    if (!Marketplace.isSettlement(value)) {
      return yield* badInput(`${i.receipt}: not a settlement receipt (its kind must be "settlement")`)
    }
    const keys = yield* keysFrom(i.key)
    const verdict = Marketplace.verifySettlement(value, keys)
    const id = String((value as Record<string, unknown>)["invocationId"])
    yield* Console.log(
      i.json
        ? JSON.stringify(verdict, null, 2)
        : [
          ...verdict.checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.message}`),
          "",
          verdict.valid ? `settlement of ${id} is valid` : ""
        ].join("\n").trimEnd()
    )
    if (!verdict.valid) {
      const failed = verdict.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`).join("; ")
      return yield* new ReceiptInvalid({ message: `settlement of ${id} is NOT valid: ${failed}` })
    }
  })
).pipe(
  Command.withDescription(
    "Verify a marketplace settlement receipt (its signature by a published receipt key), offline; exits 0 valid, 1 invalid, 2 bad input"
  )
)

const get = Command.make(
  "get",
  { id: Input.runIdArgument },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.runReceipt, { params: { id: i.id } })
    yield* Console.log(JSON.stringify(reply.body, null, 2))
  })
).pipe(Command.withDescription("Print a run's receipt (JSON); a run still going gets a partial one"))

const journal = Command.make(
  "journal",
  { id: Input.runIdArgument },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.runJournal, { params: { id: i.id } })
    yield* Effect.sync(() => process.stdout.write(reply.value))
  })
).pipe(Command.withDescription("Print a run's journal export (JSONL): exactly what its receipt's digest covers"))

export const receipts = Command.make("receipts").pipe(
  Command.withDescription("Get, export and verify signed run receipts"),
  Command.withSubcommands([verify, verifySettlement, get, journal])
)

const rotate = Command.make(
  "rotate",
  { json: Input.json },
  Effect.fn(function*(i) {
    const reply = yield* Client.call(endpoints.rotateSigningKey, {})
    yield* Console.log(
      i.json
        ? JSON.stringify(reply.body, null, 2)
        : `receipts are now signed by key ${reply.value.current.keyId}; ${reply.value.keys.length} keys published (retired ones still verify old receipts)`
    )
  })
).pipe(Command.withDescription("Make a new receipt-signing key and retire the current one (needs an owner token)"))

export const keys = Command.make("keys").pipe(
  Command.withDescription("The deployment's receipt-signing keys"),
  Command.withSubcommands([rotate])
)
