// Projections: the SQL port (Postgres or PGlite), migrations, the projectors that fold journals into read
// models, the queries the edge serves from them, and hashed API tokens.
export * as Migrations from "./Migrations.ts"
export * as Projector from "./Projector.ts"
export * as Queries from "./Queries.ts"
export * as Rls from "./Rls.ts"
export * as Sql from "./Sql.ts"
export * as Tokens from "./Tokens.ts"
