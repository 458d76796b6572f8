// What the tenant and manager pages share: the API client and DOM helpers. No build step:
// plain modules, served from the API itself (CSP: scripts only from here).

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

/**
 * Calls /api/v1. A bearer token (typed by a manager or a program, kept in this tab's
 * sessionStorage) is sent as the Authorization header; without one the browser sends the
 * device session cookie by itself (same origin; the page's script never sees it).
 */
export async function api(path, { method = 'GET', body, type = 'json', token } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (!res.ok) {
    let err = null;
    try {
      err = await res.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, err);
  }
  if (res.status === 204) return null;
  return type === 'json' ? res.json() : type === 'blob' ? res.blob() : res.text();
}

export const $ = (id) => document.getElementById(id);

/** An element with attributes (on* are listeners) and children (strings become text, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** A local date (YYYY-MM-DD) plus n days, by calendar arithmetic only. */
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export const PERIOD_ORDER = ['sharp', 'peak', 'flat', 'valley', 'deep_valley'];
export const PERIOD_COLORS = { sharp: '#922b21', peak: '#d35400', flat: '#2e86c1', valley: '#1e8449', deep_valley: '#145a32' };

/** Both pages: the sign-in card instead of the dashboard, with a message (or none). */
export function showLoginCard(message) {
  $('dash').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-message').hidden = !message;
  $('login-message').textContent = message || '';
}
