/**
 * The layer rules of ARCHITECTURE.md, checked by `npm run lint:layers` (and so by .ci/run). A request walks
 * http → requests → limits / cache / providers → db, and nothing walks back up.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "fastify-only-in-http",
      comment: "Only the HTTP layer and the app builder know Fastify: the pipeline runs without HTTP (CLI, workers, tests).",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/http/", "^src/app\\.ts$"] },
      to: { path: "(^|/)node_modules/(fastify|@fastify/|fastify-type-provider-zod)" },
    },
    {
      name: "requests-not-http",
      comment: "The request pipeline answers with values and errors of its own; turning them into HTTP is http/'s job.",
      severity: "error",
      from: { path: "^src/requests/" },
      to: { path: "^src/http/" },
    },
    {
      name: "providers-not-db",
      comment: "A provider speaks to a model; storing what it said is the pipeline's job.",
      severity: "error",
      from: { path: "^src/providers/" },
      to: { path: "^src/db/" },
    },
    {
      name: "limits-not-requests-or-http",
      comment: "Limits answer with values (admitted, or refused: which limit, retry when), never with HTTP.",
      severity: "error",
      from: { path: "^src/limits/" },
      to: { path: "^src/(requests|http)/" },
    },
    {
      name: "limits-answer-with-values",
      comment: "Limits return refusals as values; the error table and its HTTP statuses are for http/ to apply.",
      severity: "error",
      from: { path: "^src/limits/" },
      to: { path: "^src/errors\\.ts$" },
    },
    {
      name: "no-cycles",
      comment: "No module depends on itself through others.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-folder-cycles",
      comment: "No folder of src/ depends on itself through other folders.",
      severity: "error",
      scope: "folder",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
