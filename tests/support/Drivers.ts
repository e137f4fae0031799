// Test support: the two drivers of the projection database's port, for contract suites that run every case
// against both: PGlite in memory, and a private Postgres cluster when this machine has the binaries.
import type { Layer } from "effect"
import { Sql } from "../../projections/Sql.ts"
import type { DatabaseUnavailable } from "../../schema/Errors.ts"
import * as Postgres from "./Postgres.ts"

export interface Driver {
  readonly title: string
  /** True when the driver cannot run here; the title says why. */
  readonly skip: boolean
  readonly start: () => Promise<
    { readonly layer: Layer.Layer<Sql, DatabaseUnavailable>; readonly stop: () => Promise<void> }
  >
}

/** PGlite in memory, then Postgres (pg) on a private cluster, or that one skipped with its reason. */
export const sql = (): ReadonlyArray<Driver> => {
  const pg = Postgres.availability()
  return [
    {
      title: "PGlite (in memory)",
      skip: false,
      start: async () => ({ layer: Sql.layerPglite(null), stop: async () => {} })
    },
    pg.available
      ? {
        title: "Postgres (pg)",
        skip: false,
        start: async () => {
          const server = await pg.start()
          return { layer: Sql.layerPg(server.url), stop: server.stop }
        }
      }
      : {
        title: `Postgres (pg) — skipped: ${pg.reason}`,
        skip: true,
        start: () => Promise.reject(new Error(pg.reason))
      }
  ]
}
