// The chat's options: system prompt and sampling/context settings sent with each request, and
// what /api/show says about the model. Empty fields mean "the model's default".
function NumberField({ label, name, value, onInput, step, min, placeholder, hint }) {
  return (
    <label class="field">
      <span>{label}</span>
      <input type="number" name={name} value={value} step={step} min={min} placeholder={placeholder}
             onInput={(e) => onInput(name, e.currentTarget.value)} />
      {hint && <small>{hint}</small>}
    </label>
  );
}

export function ctxLength(info) {
  const mi = info?.model_info ?? {};
  const k = Object.keys(mi).find((x) => x.endsWith('.context_length'));
  return k ? mi[k] : null;
}

export function OptionsPanel({ options, onChange, info, onClose }) {
  const set = (name, value) => onChange({ ...options, [name]: value });
  const caps = info?.capabilities ?? [];
  const d = info?.details ?? {};
  const ctx = ctxLength(info);
  return (
    <aside class="options" aria-label="Chat options">
      <div class="options-head">
        <h2>Chat options</h2>
        <button type="button" class="icon" title="Close options" aria-label="Close options" onClick={onClose}>×</button>
      </div>
      <label class="field">
        <span>System prompt</span>
        <textarea name="system" rows="5" value={options.system} placeholder="The model's default"
                  onInput={(e) => set('system', e.currentTarget.value)} />
      </label>
      <NumberField label="Temperature" name="temperature" value={options.temperature} step="0.05" min="0"
                   placeholder="default" onInput={set} />
      <NumberField label="Context length (num_ctx)" name="num_ctx" value={options.num_ctx} step="256" min="256"
                   placeholder="server default" hint={ctx ? `the model was trained for ${ctx} tokens` : null}
                   onInput={set} />
      <NumberField label="Max answer tokens (num_predict)" name="num_predict" value={options.num_predict}
                   step="1" min="-1" placeholder="no limit" onInput={set} />
      <NumberField label="Seed" name="seed" value={options.seed} step="1" placeholder="random" onInput={set} />
      {caps.includes('thinking') && (
        <label class="field">
          <span>Thinking</span>
          <select name="think" value={options.think} onChange={(e) => set('think', e.currentTarget.value)}>
            <option value="">model default</option>
            <option value="true">on</option>
            <option value="false">off</option>
          </select>
        </label>
      )}
      {info && (
        <dl class="model-info">
          {d.family && (<><dt>Family</dt><dd>{d.family}</dd></>)}
          {d.parameter_size && (<><dt>Parameters</dt><dd>{d.parameter_size}</dd></>)}
          {d.quantization_level && (<><dt>Quantization</dt><dd>{d.quantization_level}</dd></>)}
          {ctx && (<><dt>Context</dt><dd>{ctx}</dd></>)}
          {caps.length > 0 && (<><dt>Capabilities</dt><dd>{caps.join(', ')}</dd></>)}
        </dl>
      )}
    </aside>
  );
}

// The request's `options` object from the panel's fields (only the ones set).
export function requestOptions(o) {
  const out = {};
  for (const k of ['temperature', 'num_ctx', 'num_predict', 'seed']) {
    if (o[k] === '' || o[k] == null) continue;
    const v = Number(o[k]);
    if (Number.isFinite(v)) out[k] = v;
  }
  return out;
}
