// The API key of a server reachable from other machines (it answers 401 with
// `WWW-Authenticate: Bearer` without one). Wraps window.fetch for requests to this page's own
// origin: each carries the key kept in localStorage, and a 401 asks the user for the key once
// (however many requests failed together), stores it and retries. Imported before anything else
// so every module's fetch goes through it.
import './auth.css';

const STORAGE = 'hearth.key';
const pageFetch = window.fetch.bind(window);
let asking = null;  // the open prompt: a promise of the key entered, or null if cancelled

function storedKey() {
  try {
    return localStorage.getItem(STORAGE) ?? '';
  } catch {
    return '';  // storage disabled: the key lasts as long as the page
  }
}

let pageKey = storedKey();

function keep(key) {
  pageKey = key;
  try {
    localStorage.setItem(STORAGE, key);
  } catch {}
}

function sameOrigin(input) {
  const url = input instanceof Request ? input.url : String(input);
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

function send(input, init, key) {
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  if (key) headers.set('Authorization', `Bearer ${key}`);
  return pageFetch(input, { ...init, headers });
}

// A modal <dialog> asking for the key; resolves with it, or null when dismissed.
function askKey(refused) {
  return new Promise((resolve) => {
    const dlg = document.createElement('dialog');
    dlg.className = 'auth-dialog';
    const form = document.createElement('form');
    form.method = 'dialog';
    const title = document.createElement('h2');
    title.textContent = 'API key needed';
    const help = document.createElement('p');
    help.textContent = refused
      ? 'The server refused that key. '
      : 'This server is reachable from other machines, so it asks for its API key. ';
    help.append(
      'The key is in the file ', code('~/.hearth/api_key'), ' on the machine running ',
      code('hearth serve'), ' (its log names the file), or is the value of ',
      code('HEARTH_API_KEY'), ' if the server was started with one.');
    const input = document.createElement('input');
    input.type = 'password';
    input.name = 'key';
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.required = true;
    input.setAttribute('aria-label', 'API key');
    input.placeholder = 'API key';
    const row = document.createElement('div');
    row.className = 'auth-buttons';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.textContent = 'Cancel';
    cancel.onclick = () => dlg.close('');
    const ok = document.createElement('button');
    ok.type = 'submit';
    ok.className = 'primary';
    ok.textContent = 'Use key';
    row.append(cancel, ok);
    form.append(title, help, input, row);
    dlg.append(form);
    form.onsubmit = (e) => {
      e.preventDefault();
      dlg.close(input.value.trim());
    };
    dlg.onclose = () => {
      dlg.remove();
      resolve(dlg.returnValue || null);
    };
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

function code(text) {
  const c = document.createElement('code');
  c.textContent = text;
  return c;
}

window.fetch = async function fetchWithKey(input, init) {
  if (!sameOrigin(input)) return pageFetch(input, init);
  // A Request's body can be read once: keep a copy for the retry.
  const again = input instanceof Request ? input.clone() : input;
  const used = pageKey;
  const r = await send(input, init, used);
  if (r.status !== 401 || !/^bearer/i.test(r.headers.get('WWW-Authenticate') ?? '')) return r;
  // Another request already got a newer key while this one was on its way: just retry.
  if (pageKey && pageKey !== used) return fetchWithKey(again, init);
  asking ??= askKey(Boolean(used)).finally(() => (asking = null));
  const key = await asking;
  if (!key) return r;  // dismissed: the caller sees the 401 and its message
  if (key !== pageKey) keep(key);
  return fetchWithKey(again, init);
};
