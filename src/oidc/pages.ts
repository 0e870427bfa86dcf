/** Minimal pages the provider renders itself (errors, sign-out): no script, escaped text. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** `body` must already be safe HTML. */
export function simplePage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Gatehouse</title><link rel="stylesheet" href="/assets/gatehouse.css"></head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}
