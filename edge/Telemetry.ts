// Trace export: when OTEL_EXPORTER_OTLP_ENDPOINT is set, every span (HTTP requests, journal appends, run
// drives, model calls) is exported over OTLP/HTTP; otherwise spans still carry W3C trace context into events.
import { Config, Effect, Layer, Option } from "effect"
import { FetchHttpClient } from "effect/http"
import * as Otlp from "effect/observability/Otlp"

export const layerConfig = Layer.unwrap(
  Effect.gen(function*() {
    const endpoint = yield* Config.option(Config.NonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if (Option.isNone(endpoint)) return Layer.empty
    const serviceName = yield* Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("lantern"))
    return Otlp.layerJson({
      baseUrl: endpoint.value,
      resource: { serviceName, serviceVersion: "0.1.0" },
      tracerExportInterval: "1 second"
    }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
  })
)
