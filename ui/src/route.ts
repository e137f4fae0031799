// Where the page is: the hash (`#/runs`, `#/runs/<id>`, `#/agents`, `#/spend`, `#/access`, `#/workloads`, `#/workloads/<id>`,
// `#/queue`, `#/queue/<task id>`, `#/sessions`, `#/sessions/<id>`, `#/evals`, `#/evals/<eval run id>`), so the edge serves one document at `/` and no
// route of the cockpit can collide with the API's.
import { createSignal, onCleanup } from "solid-js"

export type Route =
  | { readonly view: "runs" }
  | { readonly view: "run"; readonly id: string }
  | { readonly view: "agents" }
  | { readonly view: "spend" }
  | { readonly view: "access" }
  | { readonly view: "workloads" }
  | { readonly view: "workload"; readonly id: string }
  | { readonly view: "queue" }
  | { readonly view: "task"; readonly id: string }
  | { readonly view: "sessions" }
  | { readonly view: "session"; readonly id: string }
  | { readonly view: "evals" }
  | { readonly view: "evalRun"; readonly id: string }

export const parse = (hash: string): Route => {
  const parts = hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent)
  if (parts[0] === "runs" && parts[1] !== undefined) return { view: "run", id: parts[1] }
  if (parts[0] === "agents") return { view: "agents" }
  if (parts[0] === "spend") return { view: "spend" }
  if (parts[0] === "access") return { view: "access" }
  if (parts[0] === "workloads" && parts[1] !== undefined) return { view: "workload", id: parts[1] }
  if (parts[0] === "workloads") return { view: "workloads" }
  if (parts[0] === "queue" && parts[1] !== undefined) return { view: "task", id: parts[1] }
  if (parts[0] === "queue") return { view: "queue" }
  if (parts[0] === "sessions" && parts[1] !== undefined) return { view: "session", id: parts[1] }
  if (parts[0] === "sessions") return { view: "sessions" }
  if (parts[0] === "evals" && parts[1] !== undefined) return { view: "evalRun", id: parts[1] }
  if (parts[0] === "evals") return { view: "evals" }
  return { view: "runs" }
}

export const href = (route: Route): string =>
  route.view === "run"
    ? `#/runs/${encodeURIComponent(route.id)}`
    : route.view === "workload"
    ? `#/workloads/${encodeURIComponent(route.id)}`
    : route.view === "task"
    ? `#/queue/${encodeURIComponent(route.id)}`
    : route.view === "session"
    ? `#/sessions/${encodeURIComponent(route.id)}`
    : route.view === "evalRun"
    ? `#/evals/${encodeURIComponent(route.id)}`
    : `#/${route.view}`

/** The current route, following hash changes until the owner is disposed. */
export const createRoute = () => {
  const [route, setRoute] = createSignal(parse(location.hash))
  const onChange = () => setRoute(parse(location.hash))
  window.addEventListener("hashchange", onChange)
  onCleanup(() => window.removeEventListener("hashchange", onChange))
  return route
}
