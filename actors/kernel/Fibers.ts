// Contexts for fibers that add many services (a run's drive, a request): rebased into a new map every DEPTH services
// added, not every 8 (effect's default), as each rebase copies every service of the stack and a span adds two.
import { Context, Effect } from "effect"

/** Services a fiber's context gathers as overlays before they are copied into a new map with the rest. */
export const DEPTH = 32

/**
 * `effect` in the current context with DEPTH as its rebase depth. It reads the context's flattened map: none is made
 * for a context without additions, and a shared one keeps the map it made; a context with additions is copied here.
 */
export const deep = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.updateContext(
    effect,
    (context: Context.Context<R>) => Context.makeUnsafe<R>(context.mapUnsafe, { maxDepth: DEPTH })
  )
