// The pure core of an actor: decide(command, state) → events | typed error, evolve(state, event) → state.
// No I/O here; the Effect shell (Actor.ts) loads, decides, appends and retries.
import { Result } from "effect"

export interface Decider<S, C, E, Err> {
  readonly initialState: S
  readonly decide: (command: C, state: S) => Result.Result<ReadonlyArray<E>, Err>
  readonly evolve: (state: S, event: E) => S
  /**
   * Declared by deciders whose state is plain JSON, to have the shell snapshot it (bus/Snapshots.ts). Bump
   * `version` whenever the shape of the state or what `evolve` folds changes: snapshots of another version
   * are ignored and the journal is replayed in full.
   */
  readonly snapshot?: { readonly version: number }
}

export const fold = <S, C, E, Err>(decider: Decider<S, C, E, Err>, events: Iterable<E>, from?: S): S => {
  let state = from ?? decider.initialState
  for (const e of events) state = decider.evolve(state, e)
  return state
}

export const accept = <E>(...events: ReadonlyArray<E>): Result.Result<ReadonlyArray<E>, never> => Result.succeed(events)
export const ignore: Result.Result<ReadonlyArray<never>, never> = Result.succeed([])
export const reject = <Err>(error: Err): Result.Result<never, Err> => Result.fail(error)
