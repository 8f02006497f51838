// The Models page (#/models): the local models with their size, quantization, context length and
// whether they fit this machine (/api/fit), pulling one with progress, deleting one, and a
// model's details (Modelfile, parameters, template, the full fit report).
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { deleteModel, fitReport, listModels, showModel, streamPull } from './api.js';
import { ctxLength } from './Options.jsx';

// 'models' while the URL hash is #/models, else 'chat'.
export function useHashView() {
  const get = () => (location.hash.startsWith('#/models') ? 'models' : 'chat');
  const [view, setView] = useState(get);
  useEffect(() => {
    const on = () => setView(get());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return view;
}

// Decimal units, as `ollama list` shows sizes.
export function humanBytes(n) {
  if (n == null || !Number.isFinite(n)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

const count = (n) => (n ? Number(n).toLocaleString('en') : '');
const speed = (tps) => (tps ? `~${tps < 10 ? tps.toFixed(1) : Math.round(tps)} tok/s` : '');

// The pull lives outside the page, so it goes on (and its progress is there to see again) while
// the chat is shown. Listeners re-render the page; `pullsDone` counts finished pulls, so a page
// mounted later still refreshes its list.
let pull = null;  // { name, status, layers: {digest: {total, completed}}, running, error, cancelled }
let pullsDone = 0;
const listeners = new Set();
const notify = () => listeners.forEach((f) => f());

function usePull() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const f = () => setTick((t) => t + 1);
    listeners.add(f);
    return () => listeners.delete(f);
  }, []);
  return pull;
}

async function startPull(name, insecure) {
  const job = { name, status: 'starting', layers: {}, running: true, controller: new AbortController() };
  pull = job;
  notify();
  try {
    await streamPull({ model: name, insecure }, job.controller.signal, (j) => {
      if (j.error) job.error = j.error;
      // A small layer's last report would otherwise name it while the big one still runs.
      const finished = j.digest && j.completed >= j.total;
      if (j.status && (!finished || !Object.values(job.layers).some((l) => l.completed < l.total)))
        job.status = j.status;
      if (j.digest) job.layers[j.digest] = { total: j.total ?? 0, completed: j.completed ?? 0 };
      notify();
    });
    if (!job.error && job.status !== 'success') job.error = 'the pull ended early';
  } catch (e) {
    if (e.name === 'AbortError') job.cancelled = true;
    else job.error = e.message;
  }
  job.running = false;
  if (!job.error && !job.cancelled) pullsDone++;
  notify();
}

// Every layer together: the server fetches them all at once.
function pullTotals(p) {
  let total = 0, completed = 0;
  for (const l of Object.values(p.layers)) {
    total += l.total;
    completed += l.completed;
  }
  return { total, completed };
}

function PullForm() {
  const p = usePull();
  const [name, setName] = useState('');
  const [insecure, setInsecure] = useState(false);
  const running = p?.running;
  const { total, completed } = p ? pullTotals(p) : { total: 0, completed: 0 };
  return (
    <section class="pull" aria-label="Pull a model">
      <form class="pull-form" onSubmit={(e) => {
        e.preventDefault();
        if (name.trim() && !running) startPull(name.trim(), insecure);
      }}>
        <input type="text" name="pull-name" aria-label="Model to pull" value={name} disabled={running}
               placeholder="Model to pull: qwen3:0.6b, host:port/ns/model:tag, hf.co/org/repo:Q4_K_M"
               onInput={(e) => setName(e.currentTarget.value)} />
        <label class="insecure" title="Allow a registry over plain HTTP">
          <input type="checkbox" name="insecure" checked={insecure} disabled={running}
                 onChange={(e) => setInsecure(e.currentTarget.checked)} />
          insecure
        </label>
        {/* Keyed apart: were one element reused, a click on Cancel would end the pull, re-render
            the button as the submit button, and its default action would start the pull again. */}
        {running
          ? <button key="cancel" type="button" class="cancel-pull" onClick={() => p.controller.abort()}>Cancel</button>
          : <button key="pull" type="submit" class="pull-button" disabled={!name.trim()}>Pull</button>}
      </form>
      {p && (
        <div class={'pull-status' + (running ? ' running' : '')} aria-live="polite">
          <div class="pull-line">
            <strong>{p.name}</strong>
            <span class="pull-text">
              {p.cancelled ? 'cancelled (what arrived is kept: pulling again resumes)'
                : p.error ? 'failed' : p.status}
              {running && total > 0 && ` · ${humanBytes(completed)} of ${humanBytes(total)}`}
            </span>
          </div>
          {running && (total > 0
            ? <progress max={total} value={completed} aria-label="Pull progress" />
            : <progress aria-label="Pull progress" />)}
          {p.error && <div class="error" role="alert">Pull failed: {p.error}</div>}
        </div>
      )}
    </section>
  );
}

// "fits · ~30 tok/s", "tight · ~3 tok/s", "too large: <reason>"
function FitVerdict({ f, error }) {
  if (error) return <span class="muted" title={error}>unknown</span>;
  if (!f) return <span class="muted">checking…</span>;
  if (f.error) return <span class="muted" title={f.error}>unknown</span>;
  const tps = speed(f.decode_tokens_per_second?.expected);
  if (f.verdict === 'too_large') return <span class="fit too_large">too large: {f.reason}</span>;
  return (
    <span class={'fit ' + f.verdict} title={f.reason}>
      {f.verdict}{tps && ` · ${tps}`}
    </span>
  );
}

function Rows({ label, rows }) {
  return (
    <>
      <h3>{label}</h3>
      <dl class="kv">
        {rows.filter(([, v]) => v !== '' && v != null).map(([k, v]) => (
          <Fragment key={k}><dt>{k}</dt><dd>{v}</dd></Fragment>
        ))}
      </dl>
    </>
  );
}

function FitDetails({ r, error }) {
  if (error) return <div class="error" role="alert">Fit report: {error}</div>;
  if (!r) return <p class="muted">Sizing the model for this machine…</p>;
  const m = r.memory ?? {};
  const tps = r.decode_tokens_per_second ?? {};
  return (
    <div class="fit-report">
      <p><FitVerdict f={r} /></p>
      <p class="small">{r.reason}</p>
      <Rows label={`Memory at ${count(r.context)} tokens of context`} rows={[
        ['Weights', humanBytes(m.weights)],
        ['KV cache', humanBytes(m.kv_cache)],
        ['Compute', humanBytes(m.compute)],
        ['Tokenizer', humanBytes(m.tokenizer)],
        ['Total', humanBytes(m.total)],
        ['Longest context that fits', count(r.max_context)],
        ['Decode speed', speed(tps.expected)],
        ['… with a full context', speed(tps.expected_full_context)],
      ]} />
      {r.contexts?.length > 0 && (
        <>
          <h3>By context length</h3>
          <table class="small">
            <thead><tr><th>Context</th><th>Memory</th><th>Verdict</th></tr></thead>
            <tbody>
              {r.contexts.map((c) => (
                <tr key={c.context}><td>{count(c.context)}</td><td>{humanBytes(c.total)}</td>
                  <td class={'fit ' + c.verdict}>{c.verdict.replace('_', ' ')}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {r.quantizations?.length > 0 && (
        <>
          <h3>At other quantizations</h3>
          <table class="small">
            <thead><tr><th>Type</th><th>Memory</th><th>Speed</th><th>Verdict</th></tr></thead>
            <tbody>
              {r.quantizations.map((q) => (
                <tr key={q.quantization} class={q.quantization === r.quantization ? 'current' : ''}>
                  <td>{q.quantization}</td><td>{humanBytes(q.total)}</td><td>{speed(q.decode_tokens_per_second)}</td>
                  <td class={'fit ' + q.verdict}>{q.verdict.replace('_', ' ')}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}

function Details({ name, info, infoError, report, reportError, onClose }) {
  const d = info?.details ?? {};
  const caps = info?.capabilities ?? [];
  return (
    <aside class="model-details" aria-label="Model details">
      <div class="options-head">
        <h2>{name}</h2>
        <button type="button" class="icon" title="Close details" aria-label="Close details" onClick={onClose}>×</button>
      </div>
      {infoError && <div class="error" role="alert">{infoError}</div>}
      {!info && !infoError && <p class="muted">Loading…</p>}
      {info && (
        <>
          <Rows label="Model" rows={[
            ['Family', d.family],
            ['Parameters', d.parameter_size],
            ['Quantization', d.quantization_level],
            ['Context length', count(ctxLength(info))],
            ['Capabilities', caps.join(', ')],
          ]} />
          <h3>Fit on this machine</h3>
          <FitDetails r={report} error={reportError} />
          <h3>Modelfile</h3>
          <pre class="modelfile">{info.modelfile}</pre>
          <h3>Parameters</h3>
          {info.parameters ? <pre class="parameters">{info.parameters}</pre> : <p class="muted small">none</p>}
          <h3>Template</h3>
          {info.template ? <pre class="template">{info.template}</pre> : <p class="muted small">none</p>}
          {info.system && (<><h3>System prompt</h3><pre class="system">{info.system}</pre></>)}
        </>
      )}
    </aside>
  );
}

// backHref: where "← Chat" goes (the open chat's address).
export function ModelsPage({ backHref = '#/' }) {
  usePull();  // re-render when a pull ends: `pullsDone` below then refreshes the list
  const [models, setModels] = useState(null);  // null while loading
  const [error, setError] = useState('');
  const [fit, setFit] = useState(null);  // GET /api/fit: { machine, models }
  const [fitError, setFitError] = useState('');
  const [infos, setInfos] = useState({});  // name -> /api/show answer or { error }
  const [reports, setReports] = useState({});  // name -> full /api/fit report or { error }
  const [selected, setSelected] = useState(null);
  const [confirming, setConfirming] = useState(null);
  const [deleting, setDeleting] = useState(null);

  // The list and the fit verdicts load in parallel: sizing every model takes longer.
  const refresh = () => {
    setError('');
    listModels().then(setModels).catch((e) => setError(e.message));
    setFitError('');
    fitReport().then(setFit).catch((e) => setFitError(e.message));
  };
  useEffect(refresh, [pullsDone]);
  useEffect(() => {
    const before = document.title;
    document.title = 'Models · hearth';
    return () => (document.title = before);
  }, []);
  useEffect(() => {
    for (const m of models ?? []) {
      if (infos[m.name]) continue;
      showModel(m.name)
        .then((i) => setInfos((x) => ({ ...x, [m.name]: i })))
        .catch((e) => setInfos((x) => ({ ...x, [m.name]: { error: e.message } })));
    }
  }, [models]);
  useEffect(() => {
    if (!selected || reports[selected]) return;
    fitReport(selected)
      .then((r) => setReports((x) => ({ ...x, [selected]: r })))
      .catch((e) => setReports((x) => ({ ...x, [selected]: { error: e.message } })));
  }, [selected]);

  const remove = async (name) => {
    setDeleting(name);
    try {
      await deleteModel(name);
      if (selected === name) setSelected(null);
      setInfos(({ [name]: _, ...rest }) => rest);
      setReports(({ [name]: _, ...rest }) => rest);
      refresh();
    } catch (e) {
      setError(`Could not delete ${name}: ${e.message}`);
    }
    setConfirming(null);
    setDeleting(null);
  };

  const fitOf = (name) => fit?.models?.find((f) => f.name === name);
  const mc = fit?.machine;
  const info = selected ? infos[selected] : null;
  return (
    <div class={'models-page' + (selected ? ' with-details' : '')}>
      <main class="models-main">
        <header class="top">
          <a class="nav-link" href={backHref}>← Chat</a>
          <h1>Models</h1>
          <span class="spacer" />
          {mc && (
            <span class="machine muted small" title={mc.cpu}>
              {mc.threads} threads · {humanBytes(mc.memory_available)} free of {humanBytes(mc.memory_total)}
              {mc.memory_bandwidth ? ` · ${humanBytes(mc.memory_bandwidth)}/s` : ''}
            </span>
          )}
        </header>
        <div class="models-scroll">
          <PullForm />
          {error && <div class="error" role="alert">{error}</div>}
          {fitError && <div class="error" role="alert">Could not size the models: {fitError}</div>}
          {models === null && !error && <p class="muted">Loading models…</p>}
          {models?.length === 0 && <p class="muted">No models yet: pull one above.</p>}
          {models?.length > 0 && (
            <table class="models-table">
              <thead>
                <tr><th>Name</th><th>Size</th><th>Quantization</th><th>Parameters</th><th>Context</th>
                  <th>On this machine</th><th /></tr>
              </thead>
              <tbody>
                {models.map((m) => (
                  <tr key={m.name} data-model={m.name} class={m.name === selected ? 'current' : ''}>
                    <td class="name">
                      <button type="button" class="link" onClick={() => setSelected(m.name)}>{m.name}</button>
                    </td>
                    <td class="size">{humanBytes(m.size)}</td>
                    <td class="quant">{m.details?.quantization_level}</td>
                    <td class="params">{m.details?.parameter_size}</td>
                    <td class="ctx">{count(ctxLength(infos[m.name]))}</td>
                    <td class="verdict"><FitVerdict f={fitOf(m.name)} error={fitError} /></td>
                    <td class="row-actions">
                      {confirming === m.name ? (
                        <>
                          <span class="small">Delete?</span>
                          <button type="button" class="danger confirm-delete" disabled={deleting === m.name}
                                  onClick={() => remove(m.name)}>Delete</button>
                          <button type="button" onClick={() => setConfirming(null)}>Keep</button>
                        </>
                      ) : (
                        <>
                          <button type="button" class="details" onClick={() => setSelected(m.name)}>Details</button>
                          <button type="button" class="delete" onClick={() => setConfirming(m.name)}>Delete</button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </main>
      {selected && (
        <Details name={selected} info={info && !info.error ? info : null} infoError={info?.error}
                 report={reports[selected]?.error ? null : reports[selected]}
                 reportError={reports[selected]?.error} onClose={() => setSelected(null)} />
      )}
    </div>
  );
}
