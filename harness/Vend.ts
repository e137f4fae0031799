// A declared secret from the harness's secret vendor (harness/main.ts), asked for with the workload's identity token:
// what the backends' drivers that run outside the sandbox (harness/vm.ts, harness/kube.ts) call before the workload
// starts, as the in-sandbox relay does. The vendor decides and audits; a refusal is an error naming the secret and
// the status, never a value.
import { request } from "node:http"

export const vend = (socketPath: string, name: string, token: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path: `/v1/secrets/${encodeURIComponent(name)}`, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          if (res.statusCode === 200) resolve(body)
          else reject(new Error(`secret ${name} was not vended (${res.statusCode}): ${body.trim()}`))
        })
      }
    )
    req.on("error", reject)
    req.end()
  })

/** Every name in `names`, in order, or the first refusal. */
export const vendAll = async (
  socketPath: string,
  names: ReadonlyArray<string>,
  token: string
): Promise<ReadonlyArray<readonly [string, string]>> => {
  const out: Array<readonly [string, string]> = []
  for (const name of names) out.push([name, await vend(socketPath, name, token)])
  return out
}
