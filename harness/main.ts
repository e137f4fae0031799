// The harness (ADR 0046): one process beside each sandboxed workload, started detached by the spawner so that it
// outlives the host that started it. It talks to Lantern only over NATS: it reports output, heartbeats, egress
// decisions and the exit (each batch re-sent until a spawner acknowledges it, in order), asks for secrets on the
// workload's behalf, and answers pings and terminations. It serves the sandbox three Unix sockets: the egress gate
// (harness/Egress.ts), the secret vendor and the model endpoint (OpenAI's chat completions, ADR 0062); the last two
// pass the workload's identity token to Lantern and never decide anything themselves. It imports no actor code. Usage: node harness/main.ts <config.json>
import { spawn } from "node:child_process"
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { createServer } from "node:http"
import { join } from "node:path"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import * as Egress from "./Egress.ts"

export interface Config {
  readonly tenant: string
  readonly workloadId: string
  readonly natsUrl: string
  readonly natsToken?: string
  /** The backend's whole command line (the relay and the workload inside it). */
  readonly argv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  /** The workload's directory on this host: sock/ (the sockets), harness.log. */
  readonly dir: string
  /** Where the workload starts (a directory it may write, shared with the host); `dir` when absent. */
  readonly cwd?: string
  readonly egress: Egress.Policy
  readonly timeoutMs: number
  readonly heartbeatMs: number
  /** After the workload ended, how long to keep re-sending unacknowledged reports before giving up. */
  readonly giveUpMs: number
  /** cgroup v1 limits to apply, when the host allows it. */
  readonly limits: { readonly memoryMb: number; readonly vcpu: number; readonly pids: number } | null
}

type Report =
  | { _tag: "output"; stream: "stdout" | "stderr"; text: string }
  | { _tag: "heartbeat"; at: string; cpuMs: number; rssKb: number | null }
  | { _tag: "egress"; host: string; port: number; allowed: boolean; detail: string }
  | { _tag: "exited"; code: number; usage: Usage }
  | { _tag: "killed"; reason: string; by: string; usage: Usage }
interface Usage {
  wallMs: number
  cpuMs: number
  peakRssKb: number | null
}

/**
 * `--pool` (ADR 0069): started ahead of need by the spawner, its modules loaded and, when the spawner gave it the bus's
 * address (LANTERN_HARNESS_NATS_URL), its connection already dialled. It reads two lines on stdin: the path of its
 * workload's config, on which it prepares everything that starts nothing (cgroups, sockets, subscriptions), then
 * `{"token": ...}` once the spawner has made the start durable, on which it starts the workload with that identity
 * token. If stdin ends first (the start could not be journaled, or the spawner's host stopped) it starts nothing and
 * exits. A pooled harness serves one workload and then exits: nothing of it outlives its workload.
 */
const pooled = process.argv[2] === "--pool"
const stdinLines: Array<string> = []
const stdinWaiters: Array<(line: string | null) => void> = []
let stdinEnded = false
if (pooled) {
  let text = ""
  const settle = () => {
    while (stdinWaiters.length > 0 && (stdinLines.length > 0 || stdinEnded)) {
      stdinWaiters.shift()!(stdinLines.shift() ?? null)
    }
  }
  process.stdin.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8")
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
      stdinLines.push(text.slice(0, nl))
      text = text.slice(nl + 1)
    }
    settle()
  })
  const end = () => {
    stdinEnded = true
    settle()
  }
  process.stdin.on("end", end)
  process.stdin.on("error", end)
}
/** The next line the spawner wrote on stdin, or null once stdin has ended. */
const nextLine = (): Promise<string | null> =>
  new Promise((resolve) => {
    stdinWaiters.push(resolve)
    if (stdinLines.length > 0 || stdinEnded) stdinWaiters.shift()!(stdinLines.shift() ?? null)
  })

const dial = (servers: string, name: string, token?: string) =>
  connect({
    servers,
    ...(token === undefined ? {} : { token }),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true
  })
const poolUrl = pooled ? process.env["LANTERN_HARNESS_NATS_URL"] : undefined
/** The connection dialled while the harness waits in the pool (no subscription, no workload yet). */
const early = poolUrl === undefined || poolUrl === "" ? null : dial(poolUrl, `lantern-harness-pool-${process.pid}`)
// tells the spawner this one is ready (loaded, and connected when it dialled): it is handed out before a newer one
// (only while it waits: once it has its config the spawner reads one line more and then stops reading)
let configured = false
// a write after the spawner stopped reading must not end the harness (EPIPE)
process.stdout.on("error", () => {})
if (pooled) {
  void (early ?? Promise.resolve()).then(
    () => {
      if (!configured) process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
    },
    () => {}
  )
}

const configPath = pooled ? await nextLine() : process.argv[2]
if (configPath === null) process.exit(0) // never needed
configured = true
if (configPath === undefined) {
  process.stderr.write("usage: harness/main.ts <config.json> | --pool\n")
  process.exit(2)
}
const config = JSON.parse(readFileSync(configPath, "utf8")) as Config
// the file holds the identity token: read once, then gone
rmSync(configPath, { force: true })

const logFile = join(config.dir, "harness.log")
const log = (line: string) => {
  try {
    appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`)
  } catch {
    // logging never stops the harness
  }
}

const base = `${config.tenant}.${config.workloadId}`
const sockDir = join(config.dir, "sock")
mkdirSync(sockDir, { recursive: true, mode: 0o755 })

// ---- cgroup v1 limits (this machine kind has v1 controllers; v2 is tried first elsewhere) ----

const enforced: Array<string> = ["timeout"]
const cgroupDirs: Array<string> = []
/**
 * The workload's cgroup v1 groups, one per controller whose hierarchy is really mounted here (a folder of cgroupfs
 * has `cgroup.procs`; a plain folder under /sys/fs/cgroup is not one and is never created). A limit counts as
 * enforced only once the kernel reads it back; `cpuacct` only accounts.
 */
const cgroupSetup = (): Array<string> => {
  if (config.limits === null) return []
  const name = `lantern-${config.workloadId}`
  const mounted = (candidates: ReadonlyArray<string>) => candidates.find((c) => existsSync(join(c, "cgroup.procs")))
  const cpuRoot = mounted(["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"])
  const attempts: Array<[string, string | undefined, ReadonlyArray<[string, string]>]> = [
    ["memory", mounted(["/sys/fs/cgroup/memory"]), [[
      "memory.limit_in_bytes",
      String(config.limits.memoryMb * 1024 * 1024)
    ]]],
    ["cpu", cpuRoot, [["cpu.cfs_period_us", "100000"], [
      "cpu.cfs_quota_us",
      String(Math.max(1000, Math.round(config.limits.vcpu * 100_000)))
    ]]],
    ["pids", mounted(["/sys/fs/cgroup/pids"]), [["pids.max", String(config.limits.pids)]]],
    ["cpuacct", cpuRoot?.includes("cpuacct") === true ? undefined : mounted(["/sys/fs/cgroup/cpuacct"]), []]
  ]
  const procs: Array<string> = []
  for (const [what, root, files] of attempts) {
    if (root === undefined) continue
    const dir = join(root, name)
    try {
      try {
        mkdirSync(dir)
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e
      }
      cgroupDirs.push(dir)
      for (const [file, value] of files) {
        writeFileSync(join(dir, file), value)
        if (readFileSync(join(dir, file), "utf8").trim() === "") throw new Error(`${file} did not take ${value}`)
      }
      procs.push(join(dir, "cgroup.procs"))
      if (what !== "cpuacct") enforced.push(what)
    } catch (e) {
      log(`cgroup ${what} not applied: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  return procs
}
const cgroupProcs = cgroupSetup()

/** What the workload's cgroups accounted: CPU of every process ever in them, and the memory high-water mark. */
const cgroupUsage = (): { cpuMs: number; peakKb: number | null } => {
  const read = (file: string) => {
    try {
      return Number(readFileSync(file, "utf8").trim())
    } catch {
      return null
    }
  }
  const cpu = cgroupDirs.find((d) => d.includes("cpuacct/") || d.includes("cpuacct,") || d.includes(",cpuacct"))
  const memory = cgroupDirs.find((d) => d.includes("/memory/"))
  const ns = cpu === undefined ? null : read(join(cpu, "cpuacct.usage"))
  const bytes = memory === undefined ? null : read(join(memory, "memory.max_usage_in_bytes"))
  return { cpuMs: ns === null ? 0 : ns / 1e6, peakKb: bytes === null ? null : Math.round(bytes / 1024) }
}

const rmdirQuietly = (dir: string) => {
  try {
    rmdirSync(dir)
  } catch {
    // still busy: the host reaps empty groups later
  }
}

// ---- NATS ----

/**
 * The connection: the one dialled in the pool when it goes where the config says, else one opened now, while the
 * sandbox starts (reports wait for it, the sandbox does not).
 */
const ncReady: Promise<NatsConnection> = early !== null && poolUrl === config.natsUrl && config.natsToken === undefined
  ? early
  : (void early?.then((nc) => nc.close()).catch(() => {}),
    dial(config.natsUrl, `lantern-harness-${config.workloadId}`, config.natsToken))
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
const parse = (data: Uint8Array): Record<string, unknown> => {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>
  } catch {
    return {}
  }
}

// ---- reports: batched, in order, each batch re-sent until acknowledged ----

const pending: Array<Report> = []
let seq = 0
let flushing: Promise<void> | null = null
let stopAsked = false
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const sendBatch = async (reports: ReadonlyArray<Report>) => {
  seq += 1
  const body = json({ seq, reports })
  for (let attempt = 0;; attempt++) {
    try {
      const reply = await (await ncReady).request(`lantern.spawner.report.${base}`, body, { timeout: 5000 })
      const answer = parse(reply.data)
      if (answer["stop"] === true) stopAsked = true
      return
    } catch (e) {
      if (finishedAt !== null && Date.now() - finishedAt > config.giveUpMs) {
        log(`giving up: report ${seq} unacknowledged ${config.giveUpMs} ms after the workload ended`)
        process.exit(1)
      }
      // no spawner is listening (its host died): keep the batch and try again until one adopts the workload
      if (attempt % 25 === 0) log(`report ${seq} not acknowledged yet: ${e instanceof Error ? e.message : String(e)}`)
      await sleep(Math.min(1000, 50 * (attempt + 1)))
    }
  }
}

const flush = (): Promise<void> => {
  if (flushing !== null) return flushing
  flushing = (async () => {
    while (pending.length > 0) {
      // one batch at most 32 reports and ~48 KB of output, so an event stays well under the bus's message limit
      const batch: Array<Report> = []
      let bytes = 0
      while (pending.length > 0 && batch.length < 32 && bytes < 48_000) {
        const r = pending.shift()!
        bytes += r._tag === "output" ? r.text.length : 64
        batch.push(r)
      }
      await sendBatch(batch)
    }
  })().finally(() => {
    flushing = null
    if (pending.length > 0) void flush()
  })
  return flushing
}
/**
 * Queues a report. With no batch in flight it goes at once (the workload's first output is not held back for a
 * timer); what arrives while a batch is in flight goes in the next batch, sent when that one is acknowledged.
 */
const report = (r: Report) => {
  pending.push(r)
  void flush()
}

// ---- the workload's process tree: cpu and memory from /proc ----

/** When the workload was started (a pooled harness waits before that; its wait is not the workload's time). */
let started = Date.now()
let peakRssKb: number | null = null
const treeOf = (root: number): Array<number> => {
  const children = new Map<number, Array<number>>()
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      const list = children.get(ppid) ?? []
      list.push(Number(name))
      children.set(ppid, list)
    } catch {
      // gone meanwhile
    }
  }
  const out: Array<number> = []
  const walk = (pid: number) => {
    out.push(pid)
    for (const c of children.get(pid) ?? []) walk(c)
  }
  walk(root)
  return out
}
const TICKS = 100
/** The CPU time of this process's reaped children (cutime + cstime of /proc/self/stat), ms. */
const reapedCpuMs = (): number => {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / TICKS
  } catch {
    return 0
  }
}
/** The last CPU time sampled from the running tree (a sandbox's processes may not all be reaped by this one). */
let lastCpuMs = 0
const sample = (root: number): { cpuMs: number; rssKb: number | null } => {
  let cpuTicks = 0
  let rss = 0
  let seen = false
  for (const pid of treeOf(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      // utime, stime, cutime, cstime (fields 14-17 of stat; 11-14 after the command)
      cpuTicks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
      const status = readFileSync(`/proc/${pid}/status`, "utf8")
      const m = /VmRSS:\s+(\d+)/.exec(status)
      if (m !== null) {
        rss += Number(m[1])
        seen = true
      }
    } catch {
      // exited meanwhile
    }
  }
  const rssKb = seen ? rss : null
  if (rssKb !== null && (peakRssKb === null || rssKb > peakRssKb)) peakRssKb = rssKb
  const cpuMs = (cpuTicks * 1000) / TICKS
  lastCpuMs = Math.max(lastCpuMs, cpuMs)
  return { cpuMs, rssKb }
}

// ---- the secret vendor: the workload's token goes to Lantern, which decides ----

const secretsServer = createServer(async (req, res) => {
  const m = /^\/v1\/secrets\/([A-Za-z_][A-Za-z0-9_]{0,127})$/.exec(req.url ?? "")
  const auth = req.headers.authorization ?? ""
  const token = auth.startsWith("Bearer ") ? auth.slice(7) : ""
  if (req.method !== "GET" || m === null) {
    res.writeHead(404, { "content-type": "text/plain" }).end("GET /v1/secrets/<ENV_NAME>\n")
    return
  }
  try {
    const reply = await (await ncReady).request(`lantern.spawner.vend.${base}`, json({ envName: m[1], token }), {
      timeout: 10_000
    })
    const answer = parse(reply.data)
    if (typeof answer["value"] === "string") {
      res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" }).end(answer["value"])
    } else {
      res.writeHead(403, { "content-type": "text/plain" }).end(`${String(answer["error"] ?? "refused")}\n`)
    }
  } catch {
    res.writeHead(503, { "content-type": "text/plain" }).end("the secret vendor cannot reach Lantern\n")
  }
})

// ---- model calls (ADR 0062): OpenAI's chat completions, forwarded with the workload's token; Lantern decides ----

const MAX_MODEL_BODY = 4 * 1024 * 1024
const openAiError = (status: number, code: string, message: string) =>
  [
    status,
    JSON.stringify({
      error: { message, type: status === 401 ? "authentication_error" : "api_error", code, param: null }
    })
  ] as const

const modelsServer = createServer((req, res) => {
  const send = ([status, body]: readonly [number, string]) =>
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(body)
  const path = (req.url ?? "").split("?")[0]
  if (req.method !== "POST" || (path !== "/v1/chat/completions" && path !== "/chat/completions")) {
    send(openAiError(404, "not_found", "POST /v1/chat/completions"))
    return
  }
  const auth = req.headers.authorization ?? ""
  const token = auth.startsWith("Bearer ") ? auth.slice(7) : ""
  const chunks: Array<Buffer> = []
  let size = 0
  req.on("data", (c: Buffer) => {
    size += c.length
    if (size > MAX_MODEL_BODY) {
      send(openAiError(413, "too_large", `the body is over ${MAX_MODEL_BODY} bytes`))
      req.destroy()
      return
    }
    chunks.push(c)
  })
  req.on("end", async () => {
    if (res.headersSent) return
    let body: unknown
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      send(openAiError(400, "invalid_json", "the body is not JSON"))
      return
    }
    try {
      const reply = await (await ncReady).request(`lantern.spawner.model.${base}`, json({ token, body }), {
        timeout: 150_000
      })
      const answer = parse(reply.data) as { status?: number; body?: unknown }
      send([typeof answer.status === "number" ? answer.status : 502, JSON.stringify(answer.body ?? {})])
    } catch {
      send(openAiError(503, "unavailable", "the harness cannot reach Lantern"))
    }
  })
})

// ---- run ----

let child: ReturnType<typeof spawn> | null = null
let finished = false
let finishedAt: number | null = null
let killedFor: { reason: string; by: string } | null = null

const kill = (reason: string, by: string) => {
  if (finished) return
  // asked before the start: the workload is never started (see `main`)
  if (killedFor === null) killedFor = { reason, by }
  if (child === null || child.pid === undefined) return
  try {
    process.kill(-child.pid, "SIGTERM")
  } catch {
    // already gone
  }
  const pid = child.pid
  setTimeout(() => {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      // gone
    }
  }, 2000).unref()
}

const main = async () => {
  const gate = Egress.server(config.egress, (d) => {
    log(`egress ${d.allowed ? "allowed" : "refused"} ${d.host}:${d.port} ${d.detail}`)
    report({ _tag: "egress", host: d.host, port: d.port, allowed: d.allowed, detail: d.detail })
  })
  // a restart of the workload on this host finds the sockets of its first harness: they are stale
  for (const name of ["egress.sock", "secrets.sock", "models.sock"]) rmSync(join(sockDir, name), { force: true })
  await new Promise<void>((r) => gate.listen(join(sockDir, "egress.sock"), r))
  await new Promise<void>((r) => secretsServer.listen(join(sockDir, "secrets.sock"), r))
  await new Promise<void>((r) => modelsServer.listen(join(sockDir, "models.sock"), r))

  void ncReady.then((nc) => {
    nc.subscribe(`lantern.harness.${base}.ping`, {
      callback: (_e, m) => {
        m.respond(json({ pid: process.pid, running: !finished }))
      }
    })
    nc.subscribe(`lantern.harness.${base}.terminate`, {
      callback: (_e, m) => {
        const body = parse(m.data)
        kill(String(body["reason"] ?? "terminated"), String(body["by"] ?? "operator"))
        m.respond(json({ ok: true, running: !finished }))
      }
    })
  })

  // pooled: nothing starts before the spawner says the start is durable; no word (stdin ended) means start nothing
  let token: string | undefined
  if (pooled) {
    const line = await nextLine()
    process.stdin.destroy() // from here on the harness outlives whoever started it
    const go = line === null ? null : parse(new TextEncoder().encode(line))
    if (go === null || typeof go["token"] !== "string") {
      log("the start was called off: the workload was not started")
      gate.close()
      secretsServer.close()
      modelsServer.close()
      for (const dir of cgroupDirs) rmdirQuietly(dir)
      rmSync(sockDir, { recursive: true, force: true })
      process.exit(0)
    }
    token = go["token"]
  }
  // terminated while it was being prepared: never started
  if (killedFor !== null) {
    process.stdout.write(`${JSON.stringify({ pid: process.pid, child: null, enforced })}\n`)
    started = Date.now()
    return finish({ code: null, signal: "SIGTERM" }, gate)
  }

  // with cgroups, a shell puts itself in them before it becomes the backend's command, so nothing escapes them
  const argv = cgroupProcs.length > 0
    ? ["/bin/sh", "-c", `for f in ${cgroupProcs.join(" ")}; do echo $$ > "$f"; done; exec "$@"`, "sh", ...config.argv]
    : [...config.argv]
  started = Date.now()
  child = spawn(argv[0]!, argv.slice(1), {
    env: token === undefined ? { ...config.env } : { ...config.env, LANTERN_IDENTITY_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    cwd: config.cwd ?? config.dir
  })
  log(`started ${config.argv[0]} as ${child.pid}`)
  process.stdout.write(`${JSON.stringify({ pid: process.pid, child: child.pid, enforced })}\n`)

  const relay = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
    const text = chunk.toString("utf8")
    for (let i = 0; i < text.length; i += 16_000) report({ _tag: "output", stream, text: text.slice(i, i + 16_000) })
  }
  child.stdout!.on("data", relay("stdout"))
  child.stderr!.on("data", relay("stderr"))

  const timeout = setTimeout(
    () => kill(`timeout after ${Math.round(config.timeoutMs / 1000)} s`, "harness"),
    config.timeoutMs
  )
  const heartbeat = setInterval(() => {
    if (child?.pid === undefined) return
    const s = sample(child.pid)
    report({ _tag: "heartbeat", at: new Date().toISOString(), ...s })
    if (stopAsked) kill("the workload has ended in its journal", "spawner")
  }, config.heartbeatMs)

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child!.on("error", (e) => {
      report({ _tag: "output", stream: "stderr", text: `lantern harness: cannot start: ${e.message}\n` })
      resolve({ code: 127, signal: null })
    })
    child!.on("close", (code, signal) => resolve({ code, signal }))
  })
  clearTimeout(timeout)
  clearInterval(heartbeat)
  return finish(exit, gate)
}

/** The workload has ended (or was never started): report it, release what it held, exit. */
const finish = async (
  exit: { code: number | null; signal: NodeJS.Signals | null },
  gate: { close: () => unknown }
) => {
  finished = true
  finishedAt = Date.now()
  // the workload has been reaped: its CPU time (and its reaped descendants') is the harness's children's time
  // with cgroups, the group's accounting covers every process that ever ran in it (a sandbox's own init included)
  const accounted = cgroupUsage()
  const usage: Usage = {
    wallMs: Date.now() - started,
    cpuMs: Math.max(lastCpuMs, reapedCpuMs(), accounted.cpuMs),
    peakRssKb: accounted.peakKb === null ? peakRssKb : Math.max(peakRssKb ?? 0, accounted.peakKb)
  }
  const code = exit.code ?? 128 + (exit.signal === "SIGKILL" ? 9 : exit.signal === "SIGTERM" ? 15 : 0)
  report(killedFor === null ? { _tag: "exited", code, usage } : { _tag: "killed", ...killedFor, usage })
  log(`workload ended: code ${code}${killedFor === null ? "" : ` (${killedFor.reason})`}`)
  while (pending.length > 0 || flushing !== null) await flush()
  gate.close()
  secretsServer.close()
  modelsServer.close()
  for (const dir of cgroupDirs) rmdirQuietly(dir)
  await (await ncReady).drain().catch(() => {})
  rmSync(sockDir, { recursive: true, force: true })
  process.exit(0)
}

main().catch((e: unknown) => {
  log(`harness failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
  process.exit(1)
})
