// The CLI reads the API's Server-Sent Events with the one SSE decoder (schema/Sse.ts), whose names this keeps
// for the CLI's stream reader.
export { type Decoder, makeDecoder, type Message } from "../../schema/Sse.ts"
