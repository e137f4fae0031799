// Each tenant's egress allowlist (ADR 0043): the hosts its HTTP tools may call. Empty until the tenant sets it, so a
// tool reaches nothing by default (fail closed). Entries are `host`, `*.domain` (any subdomain, not the domain
// itself) and either with `:port`; a bare entry allows the URL's default port only.
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Kv from "../../bus/Kv.ts"
import type { BusUnavailable } from "../../schema/Errors.ts"

/** An allowlist entry: a host name or `*.` and a domain, lowercase, optionally with `:port`. */
export const HostPattern = Schema.String.check(
  Schema.isPattern(/^(\*\.)?[a-z0-9]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}(:[0-9]{1,5})?$/u, {
    message: "Expected a host such as api.example.com, *.example.com or 127.0.0.1:8443"
  })
)

export const Allowlist = Schema.Struct({
  hosts: Schema.Array(HostPattern).check(Schema.isMaxLength(256))
})
export type Allowlist = typeof Allowlist.Type

const bucket = Kv.bucket({
  name: "lantern-egress",
  value: Schema.fromJsonString(Allowlist),
  what: "an egress allowlist"
})

/** Whether `host` (and `port`, "" for the scheme's default) is on `hosts`. */
export const hostAllowed = (hosts: ReadonlyArray<string>, host: string, port: string): boolean => {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "")
  return hosts.some((entry) => {
    const [pattern = "", entryPort = ""] = entry.split(/:(?=\d+$)/)
    if (entryPort !== port) return false
    return pattern.startsWith("*.") ? h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1 : h === pattern
  })
}

export class Egress extends Context.Service<Egress, {
  readonly hosts: (tenant: string) => Effect.Effect<ReadonlyArray<string>, BusUnavailable>
  readonly set: (tenant: string, hosts: ReadonlyArray<string>) => Effect.Effect<Allowlist, BusUnavailable>
}>()("lantern/actors/tools/Egress") {
  static readonly layer = Layer.effect(
    Egress,
    Effect.gen(function*() {
      const kv = yield* Kv.open(bucket)
      return Egress.of({
        hosts: (tenant) =>
          kv.get(tenant).pipe(
            Effect.map((e) => Option.match(e, { onNone: () => [], onSome: (x) => x.value.hosts })),
            Effect.catchTag("CorruptValue", (e) => Effect.die(e))
          ),
        set: (tenant, hosts) => {
          const value = { hosts: [...new Set(hosts)] }
          return Effect.as(kv.put(tenant, value), value)
        }
      })
    })
  )
}
