// Test support: a private Postgres cluster in a temporary directory on a free port (trust auth, no fsync),
// or a fresh schema in DATABASE_URL's database when that is set; torn down after the suite.
import { execFile, execFileSync } from "node:child_process"
import { promisify } from "node:util"
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

/** A private cluster this process started, which a test may take down and bring back. */
export interface PrivateCluster extends TestPostgres {
  readonly port: number
  readonly dataDir: string
  /** `pg_ctl stop -m immediate`: the server goes away at once, as on a crash; the data directory stays. */
  readonly crash: () => Promise<void>
  /** Starts the server again on the same port and data directory (after recovery) and waits until it accepts. */
  readonly restart: () => Promise<void>
}

export type Availability<A extends TestPostgres = TestPostgres> =
  | { readonly available: true; readonly start: () => Promise<A> }
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

/** `runAs` without blocking this process's event loop (servers in the test process keep answering). */
const runAsAsync = async (binary: string, args: ReadonlyArray<string>): Promise<void> => {
  await (isRoot()
    ? promisify(execFile)("runuser", ["-u", "postgres", "--", binary, ...args])
    : promisify(execFile)(binary, [...args]))
}

const userId = (name: string): number => Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim())
const groupId = (name: string): number => Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim())

/** Starts a throwaway cluster: initdb into a temp dir, then pg_ctl start on 127.0.0.1 and a free port. */
export const startCluster = async (bin: string): Promise<PrivateCluster> => {
  const dir = mkdtempSync(join(tmpdir(), "lantern-pg-"))
  if (isRoot()) chownSync(dir, userId("postgres"), groupId("postgres"))
  const data = join(dir, "data")
  const port = await freePort()
  const pgCtl = (args: ReadonlyArray<string>) => runAsAsync(join(bin, "pg_ctl"), ["-D", data, ...args])
  const crash = async () => {
    try {
      await pgCtl(["-m", "immediate", "-w", "stop"])
    } catch {
      // not running
    }
  }
  // No fsync (the machine does not crash under a test), but a commit is written to the WAL before it is
  // acknowledged (synchronous_commit stays on): `crash` kills the server, not the machine, so like a real
  // server it loses nothing it acknowledged.
  const startServer = () =>
    pgCtl([
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
      "-l",
      join(dir, "postgres.log"),
      "-w",
      "-t",
      "30",
      "start"
    ])
  const stop = async () => {
    await crash()
    rmSync(dir, { recursive: true, force: true })
  }
  const failure = (e: unknown) => {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? ""
    return new Error(
      `could not start a test Postgres from ${bin}: ${e instanceof Error ? e.message : String(e)} ${stderr}`
    )
  }
  try {
    runAs(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
    await startServer()
  } catch (e) {
    await stop()
    throw failure(e)
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    description: `private cluster from ${bin}`,
    port,
    dataDir: data,
    stop,
    crash,
    restart: async () => {
      try {
        await startServer()
      } catch (e) {
        throw failure(e)
      }
    }
  }
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

/** Why this machine cannot start a private cluster, or the bin directory to start one from. */
const privateBinaries = (): { readonly bin: string } | { readonly reason: string } => {
  const bin = findBinaries()
  if (bin === null)
    return { reason: "no Postgres binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)" }
  if (isRoot()) {
    try {
      userId("postgres")
    } catch {
      return { reason: "running as root and there is no 'postgres' user to run initdb as" }
    }
  }
  return { bin }
}

/** How this machine can give the suite a Postgres: DATABASE_URL, else a private cluster, else a reason to skip. */
export const availability = (): Availability => {
  const url = process.env["DATABASE_URL"]
  if (url !== undefined && url !== "") return { available: true, start: () => startSchema(url) }
  const found = privateBinaries()
  if ("reason" in found) return { available: false, reason: `no DATABASE_URL and ${found.reason}` }
  return { available: true, start: () => startCluster(found.bin) }
}

/**
 * A private cluster whatever DATABASE_URL says, for tests that stop and start the server (an outage must
 * never touch a database the suite does not own).
 */
export const privateCluster = (): Availability<PrivateCluster> => {
  const found = privateBinaries()
  return "reason" in found
    ? { available: false, reason: found.reason }
    : { available: true, start: () => startCluster(found.bin) }
}
