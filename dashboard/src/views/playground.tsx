// Playground: send one request of any type from the browser and watch the answer arrive. It goes through
// POST /requests like any other, so it is stored, metered and limited like the caller's other requests.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { type FormEvent, useEffect, useId, useRef, useState } from "react";
import { api, errorMessage, messageOf, type Problem, send } from "../api.ts";
import { type Model, type RequestItem, type RequestType, requestTypes, streamingTypes } from "../api-types.ts";
import { formatCount, formatJson, formatMs, formatUsd } from "../format.ts";
import { hasUser, useSession } from "../session.tsx";
import { readEvents } from "../sse.ts";
import { NoUserOfYourOwn, Page } from "../ui.tsx";

const exampleSchema = JSON.stringify(
  { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  null,
  2,
);

interface Run {
  /** The text so far: streamed deltas, then the stored output. */
  output: string;
  result: RequestItem | null;
  error: string | null;
}

const idle: Run = { output: "", result: null, error: null };

export function PlaygroundView() {
  const session = useSession();
  if (!hasUser(session)) return <NoUserOfYourOwn title="Playground" />;
  return <Playground />;
}

function Playground() {
  const ids = { type: useId(), model: useId(), input: useId(), target: useId(), labels: useId(), schema: useId() };
  const streamId = useId();
  const client = useQueryClient();
  const [type, setType] = useState<RequestType>("chat");
  const [model, setModel] = useState("");
  const [input, setInput] = useState("");
  const [targetLanguage, setTargetLanguage] = useState("French");
  const [labels, setLabels] = useState("praise, complaint, question");
  const [schema, setSchema] = useState(exampleSchema);
  const [stream, setStream] = useState(true);
  const [running, setRunning] = useState(false);
  const [run, setRun] = useState<Run>(idle);
  const abort = useRef<AbortController | null>(null);

  const models = useQuery({
    queryKey: ["models"],
    queryFn: ({ signal }) => api<{ data: Model[] }>("/v1/models", { signal }),
    staleTime: 5 * 60_000,
  });

  // Leaving the page stops a stream still running.
  useEffect(() => () => abort.current?.abort(), []);

  const canStream = streamingTypes.includes(type);

  function body(): Record<string, unknown> {
    const options: Record<string, unknown> = {};
    if (type === "translate") options.target_language = targetLanguage.trim();
    if (type === "classify") {
      options.labels = labels
        .split(",")
        .map((label) => label.trim())
        .filter((label) => label !== "");
    }
    if (type === "extract") {
      try {
        options.schema = JSON.parse(schema);
      } catch (error) {
        throw new Error(`Schema: not valid JSON (${errorMessage(error)})`);
      }
    }
    return {
      type,
      // Chat takes messages: the text is one message from the user.
      input: type === "chat" ? [{ role: "user", content: input }] : input,
      ...(model && { model }),
      ...(Object.keys(options).length > 0 && { options }),
      ...(canStream && stream && { stream: true }),
    };
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setRun(idle);
    setRunning(true);
    try {
      const request = body();
      if (request.stream) await runStream(request, controller.signal, setRun);
      else {
        const result = await api<RequestItem>("/requests", {
          method: "POST",
          body: request,
          signal: controller.signal,
        });
        setRun({ output: formatJson(result.output), result, error: null });
      }
    } catch (error) {
      if (controller.signal.aborted) setRun((prev) => ({ ...prev, error: "Stopped." }));
      else setRun((prev) => ({ ...prev, error: errorMessage(error) }));
    } finally {
      if (abort.current === controller) abort.current = null;
      setRunning(false);
      // The new request shows up in the lists and totals.
      void client.invalidateQueries({ queryKey: ["requests"] });
      void client.invalidateQueries({ queryKey: ["overview"] });
      void client.invalidateQueries({ queryKey: ["me"] });
    }
  }

  return (
    <Page title="Playground">
      <form className="panel playground" onSubmit={submit}>
        <div className="row">
          <div className="field">
            <label htmlFor={ids.type}>Type</label>
            <select id={ids.type} value={type} onChange={(event) => setType(event.target.value as RequestType)}>
              {requestTypes.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.model}>Model</label>
            <select id={ids.model} value={model} onChange={(event) => setModel(event.target.value)}>
              <option value="">Default</option>
              {models.data?.data.map((entry) => (
                <option key={entry.id} value={entry.id}>
                  {entry.id} ({entry.owned_by})
                </option>
              ))}
            </select>
            {models.error && <p className="hint error">Could not list the models: {errorMessage(models.error)}</p>}
          </div>
        </div>
        <div className="field">
          <label htmlFor={ids.input}>Input</label>
          <textarea
            id={ids.input}
            rows={6}
            value={input}
            required
            onChange={(event) => setInput(event.target.value)}
            placeholder={type === "chat" ? "Say hello" : "The text to work on"}
          />
        </div>
        {type === "translate" && (
          <div className="field">
            <label htmlFor={ids.target}>Target language</label>
            <input
              id={ids.target}
              type="text"
              value={targetLanguage}
              required
              onChange={(event) => setTargetLanguage(event.target.value)}
            />
          </div>
        )}
        {type === "classify" && (
          <div className="field">
            <label htmlFor={ids.labels}>Labels</label>
            <input
              id={ids.labels}
              type="text"
              value={labels}
              required
              aria-describedby={`${ids.labels}-hint`}
              onChange={(event) => setLabels(event.target.value)}
            />
            <p id={`${ids.labels}-hint`} className="hint">
              Comma-separated, 2 to 50 distinct labels.
            </p>
          </div>
        )}
        {type === "extract" && (
          <div className="field">
            <label htmlFor={ids.schema}>Schema</label>
            <textarea
              id={ids.schema}
              rows={8}
              className="mono"
              value={schema}
              required
              spellCheck={false}
              aria-describedby={`${ids.schema}-hint`}
              onChange={(event) => setSchema(event.target.value)}
            />
            <p id={`${ids.schema}-hint`} className="hint">
              A JSON Schema whose root is an object.
            </p>
          </div>
        )}
        <div className="row actions">
          {canStream && (
            <div className="check">
              <input
                id={streamId}
                type="checkbox"
                checked={stream}
                onChange={(event) => setStream(event.target.checked)}
              />
              <label htmlFor={streamId}>Stream</label>
            </div>
          )}
          <button type="submit" disabled={running}>
            Run
          </button>
          {running && (
            <button type="button" className="secondary" onClick={() => abort.current?.abort()}>
              Stop
            </button>
          )}
        </div>
      </form>

      <section className="panel" aria-labelledby="output-title">
        <h2 id="output-title">Output</h2>
        <div className="output" aria-live="polite">
          {run.output ? <pre className="code">{run.output}</pre> : !running && <p className="muted">Nothing yet.</p>}
          {running && !run.output && <p className="muted">Waiting for the answer…</p>}
        </div>
        {run.error && (
          <p className="error" role="alert">
            {run.error}
          </p>
        )}
        {run.result && <RunSummary result={run.result} />}
      </section>
    </Page>
  );
}

/** Reads a stream of events into the output as they come; the `done` event carries the stored request. */
async function runStream(
  request: Record<string, unknown>,
  signal: AbortSignal,
  setRun: (update: (run: Run) => Run) => void,
) {
  const response = await send("/requests", { method: "POST", body: request, signal, accept: "text/event-stream" });
  if (!response.body) throw new Error("The answer had no body to read.");
  for await (const { event, data } of readEvents(response.body)) {
    if (event === "delta") {
      const { delta } = JSON.parse(data) as { delta?: string };
      if (delta) setRun((run) => ({ ...run, output: run.output + delta }));
    } else if (event === "done") {
      const result = JSON.parse(data) as RequestItem;
      setRun((run) => ({ ...run, output: typeof result.output === "string" ? result.output : run.output, result }));
      return;
    } else if (event === "error") {
      throw new Error(messageOf(JSON.parse(data) as Problem));
    }
  }
  throw new Error("The stream ended before the answer was complete.");
}

function RunSummary({ result }: { result: RequestItem }) {
  const { usage } = result;
  return (
    <dl className="facts summary">
      <div>
        <dt>Request</dt>
        <dd>
          <code>{result.id}</code>{" "}
          <Link to="/requests/$id" params={{ id: result.id }}>
            View request
          </Link>
        </dd>
      </div>
      <div>
        <dt>Status</dt>
        <dd>{result.status}</dd>
      </div>
      <div>
        <dt>Model</dt>
        <dd>
          {result.model} ({result.provider})
        </dd>
      </div>
      <div>
        <dt>Usage</dt>
        <dd>
          {formatCount(usage.prompt_tokens)} prompt + {formatCount(usage.completion_tokens)} completion ={" "}
          {formatCount(usage.total_tokens)} tokens
        </dd>
      </div>
      <div>
        <dt>Cost</dt>
        <dd>{formatUsd(result.cost_usd)}</dd>
      </div>
      <div>
        <dt>Cache</dt>
        <dd>{result.cached ? "hit" : "miss"}</dd>
      </div>
      <div>
        <dt>Latency</dt>
        <dd>{formatMs(result.latency_ms)}</dd>
      </div>
    </dl>
  );
}
