// Test support: a private Postgres cluster in a temporary directory on a free port (trust auth, no fsync),
// or a fresh schema in DATABASE_URL's database when that is set; torn down after the suite.
import { execFileSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { freePort } from "../../bus/NatsServer.ts"

export interface TestPostgres {
  /** A connection string for the suite's private database or schema. */
  readonly url: string
  /** Where it came from, for test titles. */
  readonly description: string
  readonly stop: () => Promise<void>
}

export type Availability =
  | { readonly available: true; readonly start: () => Promise<TestPostgres> }
  | { readonly available: false; readonly reason: string }

/** The newest Postgres bin directory holding initdb and pg_ctl, or null. */
export const findBinaries = (): string | null => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return null
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "initdb")) && existsSync(join(root, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? null : join(root, versions[0], "bin")
}

const isRoot = () => process.getuid?.() === 0

/** initdb refuses to run as root: as root, run the cluster's commands as the `postgres` user. */
const runAs = (binary: string, args: ReadonlyArray<string>) =>
  isRoot()
    ? execFileSync("runuser", ["-u", "postgres", "--", binary, ...args], { stdio: "pipe" })
    : execFileSync(binary, [...args], { stdio: "pipe" })

const userId = (name: string): number => Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim())
const groupId = (name: string): number => Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim())

/** Starts a throwaway cluster: initdb into a temp dir, then pg_ctl start on 127.0.0.1 and a free port. */
export const startCluster = async (bin: string): Promise<TestPostgres> => {
  const dir = mkdtempSync(join(tmpdir(), "lantern-pg-"))
  if (isRoot()) chownSync(dir, userId("postgres"), groupId("postgres"))
  const data = join(dir, "data")
  const port = await freePort()
  const stop = async () => {
    try {
      runAs(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"])
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    runAs(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
    runAs(join(bin, "pg_ctl"), [
      "-D", data,
      "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`,
      "-l", join(dir, "postgres.log"),
      "-w", "-t", "30",
      "start"
    ])
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? ""
    await stop()
    throw new Error(`could not start a test Postgres from ${bin}: ${e instanceof Error ? e.message : String(e)} ${stderr}`)
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, description: `private cluster from ${bin}`, stop }
}

/**
 * A fresh schema in DATABASE_URL's database, put first on the search path of every connection made with the
 * returned URL, and dropped afterwards: the suite never touches the database's other tables.
 */
export const startSchema = async (databaseUrl: string): Promise<TestPostgres> => {
  const schema = `lantern_test_${process.pid}_${Date.now().toString(36)}`
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  try {
    await admin.query(`create schema ${schema}`)
  } finally {
    await admin.end()
  }
  const url = new URL(databaseUrl)
  url.searchParams.set("options", `-c search_path=${schema}`)
  return {
    url: url.toString(),
    description: `schema ${schema} in DATABASE_URL`,
    stop: async () => {
      const c = new pg.Client({ connectionString: databaseUrl })
      await c.connect()
      try {
        await c.query(`drop schema if exists ${schema} cascade`)
      } finally {
        await c.end()
      }
    }
  }
}

/** How this machine can give the suite a Postgres: DATABASE_URL, else a private cluster, else a reason to skip. */
export const availability = (): Availability => {
  const url = process.env["DATABASE_URL"]
  if (url !== undefined && url !== "") return { available: true, start: () => startSchema(url) }
  const bin = findBinaries()
  if (bin === null) {
    return {
      available: false,
      reason: "no DATABASE_URL and no Postgres binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    }
  }
  if (isRoot()) {
    try {
      userId("postgres")
    } catch {
      return { available: false, reason: "running as root and there is no 'postgres' user to run initdb as" }
    }
  }
  return { available: true, start: () => startCluster(bin) }
}
