// Copies text; falls back to a hidden textarea where the async Clipboard API is refused.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    const ok = document.execCommand('copy');
    ta.remove();
    return ok;
  }
}

// Shows "Copied" on a button for a moment.
export function flash(button, ok) {
  const old = button.dataset.label ?? button.textContent;
  button.dataset.label = old;
  button.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => (button.textContent = old), 1200);
}
