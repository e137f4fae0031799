// The spawner's side of the harness protocol on the bus: the workload a request's subject names, requests served in
// a queue group (any host answers any harness), and the JSON the answers carry.
import { Effect, Stream } from "effect"
import { Nats, unavailable } from "../../bus/Nats.ts"

/** A request from a harness, to answer once. */
export interface Request {
  readonly subject: string
  readonly data: Uint8Array
  readonly respond: (d: Uint8Array) => boolean
}

export const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))

/** The tenant and workload of `<prefix><tenant>.<id>`, or null for any other subject. */
export const parseSubject = (subject: string, prefix: string) => {
  const rest = subject.slice(prefix.length).split(".")
  return rest.length === 2 ? { tenant: rest[0]!, id: rest[1]! } : null
}

/** The workload a request on `<prefix><tenant>.<id>` is from and its JSON body, or null for any other subject. */
export const read = <B>(
  m: Request,
  prefix: string
): { readonly who: { tenant: string; id: string }; readonly body: B } | null => {
  const who = parseSubject(m.subject, prefix)
  return who === null ? null : { who, body: JSON.parse(new TextDecoder().decode(m.data)) as B }
}

/** Handles the requests on `subject` for as long as the scope lasts, 32 at a time. */
export const serve = (subject: string, handle: (m: Request) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const { nc } = yield* Nats
    const sub = nc.subscribe(subject, { queue: "lantern-spawner" })
    yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
    yield* Effect.forkScoped(
      Stream.fromAsyncIterable(sub, unavailable(`serve ${subject}`)).pipe(
        Stream.mapEffect(handle, { concurrency: 32, unordered: true }),
        Stream.runDrain,
        Effect.ignore
      )
    )
  })
