// The part of the harness inside the sandbox (ADR 0046): it has no network but loopback, so it forwards loopback
// ports to the harness's Unix sockets (the egress gate, the secret vendor and the model endpoint, all outside, where
// the policy is enforced), fetches the secrets the spec declares with the workload's identity token, and runs the
// workload with HTTP(S)_PROXY, LANTERN_SECRETS_URL and LANTERN_MODELS_URL (and OPENAI_BASE_URL) pointing at them. It passes signals on and exits as the workload did.
// Usage: node relay.ts <egress.sock> <secrets.sock> <ENV_NAME,...> -- command args...
import { spawn } from "node:child_process"
import { connect, createServer, type Server } from "node:net"
import { vend } from "./Vend.ts"
import { dirname, join } from "node:path"

const [egressSock, secretsSock, secretNames, dashes, ...command] = process.argv.slice(2)
if (egressSock === undefined || secretsSock === undefined || dashes !== "--" || command.length === 0) {
  process.stderr.write("usage: relay.ts <egress.sock> <secrets.sock> <ENV,...> -- command args...\n")
  process.exit(2)
}

const forward = (socketPath: string): Promise<{ server: Server; port: number }> =>
  new Promise((resolve, reject) => {
    const server = createServer((client) => {
      const upstream = connect(socketPath)
      upstream.on("error", () => client.destroy())
      client.on("error", () => upstream.destroy())
      client.pipe(upstream).pipe(client)
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolve({ server, port: typeof address === "object" && address !== null ? address.port : 0 })
    })
  })

const main = async () => {
  const egress = await forward(egressSock)
  const secrets = await forward(secretsSock)
  // the model endpoint is the secret vendor's sibling (ADR 0062)
  const models = await forward(join(dirname(secretsSock), "models.sock"))
  const modelsUrl = `http://127.0.0.1:${models.port}/v1`
  const proxy = `http://127.0.0.1:${egress.port}`
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    ALL_PROXY: proxy,
    NO_PROXY: "",
    LANTERN_SECRETS_URL: `http://127.0.0.1:${secrets.port}`,
    LANTERN_SECRETS_SOCKET: secretsSock,
    LANTERN_MODELS_URL: modelsUrl
  }
  const token = process.env["LANTERN_IDENTITY_TOKEN"] ?? ""
  for (const name of (secretNames ?? "").split(",").filter((n) => n !== "")) {
    env[name] = await vend(secretsSock, name, token)
  }
  // an OpenAI client works unchanged against the harness, unless the spec set (or was vended) its own OpenAI endpoint or key
  if (env["OPENAI_BASE_URL"] === undefined && env["OPENAI_API_KEY"] === undefined) {
    env["OPENAI_BASE_URL"] = modelsUrl
    env["OPENAI_API_KEY"] = token
  }
  const child = spawn(command[0]!, command.slice(1), { stdio: "inherit", env })
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(signal, () => child.kill(signal))
  }
  child.on("error", (e) => {
    process.stderr.write(`lantern harness: cannot start ${command[0]}: ${e.message}\n`)
    process.exit(127)
  })
  child.on("exit", (code, signal) => {
    egress.server.close()
    secrets.server.close()
    models.server.close()
    process.exit(code ?? 128 + (signal === null ? 0 : signalNumber(signal)))
  })
}

const signalNumber = (signal: NodeJS.Signals): number =>
  ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 } as Record<string, number>)[
    signal
  ] ?? 0

main().catch((e: unknown) => {
  process.stderr.write(`lantern harness: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(126)
})
