/** Escaping for the printable statements (HTML) and their CSV form, shared by every statement renderer. */

/** A CSV cell (RFC 4180: quoted when it holds a comma, quote or line break). */
export function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** Text for HTML element content and attribute values. */
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
