/**
 * A per-site value read again at most every `refreshMs` (0: on every call), one read in
 * flight per site at a time (callers in between share its promise), and a failed read not
 * kept. The version and stamp watches of the API's stored results (site-versions.ts,
 * stamp-watch.ts) read their Redis keys through it.
 */
export class PerSiteRefresh<T> {
  private readonly bySite = new Map<string, { at: number; value: Promise<T> }>();

  constructor(
    private readonly refreshMs: number,
    private readonly read: (site: string) => Promise<T>,
  ) {}

  get(site: string): Promise<T> {
    const now = Date.now();
    const hit = this.bySite.get(site);
    if (hit && this.refreshMs > 0 && now - hit.at < this.refreshMs) return hit.value;
    const value = this.read(site);
    this.bySite.set(site, { at: now, value });
    value.catch(() => this.bySite.delete(site));
    return value;
  }

  invalidate(): void {
    this.bySite.clear();
  }
}
