// A local stand-in for the Kubernetes API server, speaking its wire format for the calls the spawner's kubernetes
// backend makes (RuntimeClass reads, Job, NetworkPolicy and Secret creation, a Job's resumption by merge patch, pod
// listing, status and log following, Job deletion), recording every request. A suspended Job runs no pod until resumed. A created Job's container is run here as a local process (its command, args
// and env), so its log and exit code are real; as a kubelet does, it starts only once every Secret its environment
// references exists (values from `data`, base64); deleting the Job kills it and collects the Secrets it owns.
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { freePort } from "../../bus/NatsServer.ts"

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly body: any
}

interface Pod {
  readonly name: string
  readonly namespace: string
  readonly labels: Record<string, string>
  readonly job: string
  output: string
  exitCode: number | null
  readonly child: ChildProcess
  readonly listeners: Set<ServerResponse>
}

export interface FakeKubernetes {
  readonly url: string
  readonly requests: ReadonlyArray<Recorded>
  /** RuntimeClasses the server has; others answer 404. */
  readonly runtimeClasses: Set<string>
  readonly jobs: ReadonlyMap<string, any>
  /** Secrets by `namespace/name`, as created. */
  readonly secrets: ReadonlyMap<string, any>
  readonly close: () => Promise<void>
}

const status = (res: ServerResponse, code: number, reason: string, message: string) =>
  res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code
  }))

const json = (res: ServerResponse, code: number, body: unknown) =>
  res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body))

const bodyOf = (req: IncomingMessage) =>
  new Promise<any>((resolve) => {
    let text = ""
    req.on("data", (c: Buffer) => (text += c.toString()))
    req.on("end", () => {
      try {
        resolve(text === "" ? null : JSON.parse(text))
      } catch {
        resolve(text)
      }
    })
  })

export const start = async (options: { readonly runtimeClasses: ReadonlyArray<string> }): Promise<FakeKubernetes> => {
  const requests: Array<Recorded> = []
  const runtimeClasses = new Set(options.runtimeClasses)
  const jobs = new Map<string, any>()
  const pods = new Map<string, Pod>()
  const secrets = new Map<string, any>()

  const podView = (p: Pod) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    status: {
      phase: p.exitCode === null ? "Running" : p.exitCode === 0 ? "Succeeded" : "Failed",
      containerStatuses: [{
        name: "main",
        ready: p.exitCode === null,
        restartCount: 0,
        image: "fake",
        imageID: "fake",
        state: p.exitCode === null
          ? { running: { startedAt: new Date().toISOString() } }
          : { terminated: { exitCode: p.exitCode, reason: p.exitCode === 0 ? "Completed" : "Error" } }
      }]
    }
  })

  /** The container's environment, or null while a Secret (or a key of one) it references does not exist. */
  const envOf = (namespace: string, container: any): Record<string, string> | null => {
    const env: Record<string, string> = {}
    for (const e of container.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef
      if (ref === undefined) {
        env[e.name] = e.value
        continue
      }
      const data = secrets.get(`${namespace}/${ref.name}`)?.data?.[ref.key]
      if (data === undefined) return null
      env[e.name] = Buffer.from(data, "base64").toString("utf8")
    }
    return env
  }

  const runPod = (namespace: string, job: any) => {
    const container = job.spec.template.spec.containers[0]
    const env = envOf(namespace, container)
    if (env === null) {
      // CreateContainerConfigError: the kubelet tries again, until the Job is gone
      if (jobs.get(`${namespace}/${job.metadata.name}`) === job) setTimeout(() => runPod(namespace, job), 20)
      return
    }
    const child = spawn(container.command[0], [...container.command.slice(1), ...(container.args ?? [])], {
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const pod: Pod = {
      name: `${job.metadata.name}-${randomUUID().slice(0, 5)}`,
      namespace,
      labels: job.spec.template.metadata.labels,
      job: job.metadata.name,
      output: "",
      exitCode: null,
      child,
      listeners: new Set()
    }
    const append = (chunk: Buffer) => {
      pod.output += chunk.toString()
      for (const l of pod.listeners) l.write(chunk)
    }
    child.stdout!.on("data", append)
    child.stderr!.on("data", append)
    child.on("close", (code, signal) => {
      pod.exitCode = code ?? (signal === "SIGKILL" ? 137 : 143)
      for (const l of pod.listeners) l.end()
      pod.listeners.clear()
      const j = jobs.get(`${namespace}/${job.metadata.name}`)
      if (j !== undefined) j.status = pod.exitCode === 0 ? { succeeded: 1 } : { failed: 1 }
    })
    pods.set(`${namespace}/${pod.name}`, pod)
  }

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://fake")
    const body = await bodyOf(req)
    requests.push({
      method: req.method ?? "",
      path: `${url.pathname}${url.search}`,
      authorization: req.headers.authorization,
      body
    })
    const p = url.pathname
    let m: RegExpExecArray | null
    if (req.method === "GET" && (m = /^\/apis\/node\.k8s\.io\/v1\/runtimeclasses\/([^/]+)$/.exec(p))) {
      return runtimeClasses.has(m[1]!)
        ? json(res, 200, {
          apiVersion: "node.k8s.io/v1",
          kind: "RuntimeClass",
          metadata: { name: m[1] },
          handler: m[1]
        })
        : status(res, 404, "NotFound", `runtimeclasses.node.k8s.io "${m[1]}" not found`)
    }
    if (req.method === "POST" && (m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs$/.exec(p))) {
      const key = `${m[1]}/${body.metadata.name}`
      if (jobs.has(key)) return status(res, 409, "AlreadyExists", `jobs.batch "${body.metadata.name}" already exists`)
      const job = { ...body, metadata: { ...body.metadata, namespace: m[1], uid: randomUUID() }, status: {} }
      jobs.set(key, job)
      // a suspended Job has no pod until it is resumed
      if (job.spec.suspend !== true) runPod(m[1]!, job)
      return json(res, 201, job)
    }
    if (
      req.method === "POST" && (m = /^\/apis\/networking\.k8s\.io\/v1\/namespaces\/([^/]+)\/networkpolicies$/.exec(p))
    ) {
      return json(res, 201, { ...body, metadata: { ...body.metadata, namespace: m[1], uid: randomUUID() } })
    }
    if (req.method === "POST" && (m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets$/.exec(p))) {
      const key = `${m[1]}/${body.metadata.name}`
      if (secrets.has(key)) return status(res, 409, "AlreadyExists", `secrets "${body.metadata.name}" already exists`)
      const secret = { ...body, metadata: { ...body.metadata, namespace: m[1], uid: randomUUID() } }
      secrets.set(key, secret)
      return json(res, 201, secret)
    }
    if (req.method === "GET" && (m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\/([^/]+)\/status$/.exec(p))) {
      const job = jobs.get(`${m[1]}/${m[2]}`)
      return job === undefined ? status(res, 404, "NotFound", `jobs.batch "${m[2]}" not found`) : json(res, 200, job)
    }
    if (req.method === "PATCH" && (m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\/([^/]+)$/.exec(p))) {
      const job = jobs.get(`${m[1]}/${m[2]}`)
      if (job === undefined) return status(res, 404, "NotFound", `jobs.batch "${m[2]}" not found`)
      if (req.headers["content-type"] !== "application/merge-patch+json") {
        return status(
          res,
          415,
          "UnsupportedMediaType",
          `the fake takes merge patches, not ${req.headers["content-type"]}`
        )
      }
      const wasSuspended = job.spec.suspend === true
      job.spec = { ...job.spec, ...body.spec }
      if (wasSuspended && job.spec.suspend !== true) runPod(m[1]!, job)
      return json(res, 200, job)
    }
    if (req.method === "DELETE" && (m = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/jobs\/([^/]+)$/.exec(p))) {
      const key = `${m[1]}/${m[2]}`
      if (!jobs.has(key)) return status(res, 404, "NotFound", `jobs.batch "${m[2]}" not found`)
      const uid = jobs.get(key).metadata.uid
      jobs.delete(key)
      for (const pod of pods.values()) if (pod.job === m[2] && pod.exitCode === null) pod.child.kill("SIGKILL")
      // the garbage collector: what the Job owns goes with it
      for (const [k, secret] of secrets) {
        if ((secret.metadata.ownerReferences ?? []).some((o: any) => o.uid === uid)) secrets.delete(k)
      }
      return json(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success" })
    }
    if (req.method === "GET" && (m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p))) {
      const selector = url.searchParams.get("labelSelector") ?? ""
      const [k, v] = selector.split("=")
      const items = [...pods.values()].filter((x) => x.namespace === m![1] && (k === "" || x.labels[k!] === v)).map(
        podView
      )
      return json(res, 200, { apiVersion: "v1", kind: "PodList", metadata: {}, items })
    }
    if (req.method === "GET" && (m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/log$/.exec(p))) {
      const pod = pods.get(`${m[1]}/${m[2]}`)
      if (pod === undefined) return status(res, 404, "NotFound", `pods "${m[2]}" not found`)
      res.writeHead(200, { "content-type": "text/plain" })
      res.write(pod.output)
      if (url.searchParams.get("follow") !== "true" || pod.exitCode !== null) return res.end()
      pod.listeners.add(res)
      return
    }
    if (req.method === "GET" && (m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p))) {
      const pod = pods.get(`${m[1]}/${m[2]}`)
      return pod === undefined ? status(res, 404, "NotFound", `pods "${m[2]}" not found`) : json(res, 200, podView(pod))
    }
    status(res, 404, "NotFound", `the fake has no ${req.method} ${p}`)
  })
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()))
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    runtimeClasses,
    jobs,
    secrets,
    close: async () => {
      for (const pod of pods.values()) if (pod.exitCode === null) pod.child.kill("SIGKILL")
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    }
  }
}
