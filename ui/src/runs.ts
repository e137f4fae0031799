// The live list of runs (liveList.ts): a page of `GET /v1/runs` once the tenant stream (`GET /v1/stream`) says where
// it starts, then every frame of that stream sets its run's status at once and marks the run to be read again.
import type { RunActivity } from "../../schema/Api.ts"
import type { RunView } from "../../schema/Run.ts"
import type { Client, RunFilter } from "./api.ts"
import { createLiveList, newestFirst } from "./liveList.ts"

/** `lantern doctor`'s probe runs are left out of lists, as `GET /v1/runs` leaves them out. */
const PROBE_AGENT = "lantern-doctor-probe"

export const matches = (run: RunView, filter: RunFilter): boolean =>
  (filter.status === undefined || run.status === filter.status) &&
  (filter.since === undefined || Date.parse(run.createdAt) >= filter.since) &&
  (filter.agentName === undefined ? run.agentName !== PROBE_AGENT : run.agentName === filter.agentName)

/** Newest first by creation time, ties by id (descending), as `GET /v1/runs` orders them. */
export const order = newestFirst

export const createRunList = (client: Client, filter: () => RunFilter) =>
  createLiveList<RunView, RunFilter>({
    stream: "/v1/stream",
    token: client.token,
    list: (f, cursor) => client.listRuns(f, 200, cursor),
    get: (id) => client.getRun(id),
    matches,
    frame: (data) => {
      const activity = JSON.parse(data) as RunActivity
      return {
        id: activity.runId,
        apply: (run) => run.status === activity.status ? run : { ...run, status: activity.status }
      }
    }
  }, filter)
