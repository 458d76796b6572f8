/**
 * A tiny read-through cache with in-flight sharing: N concurrent requests for the same
 * statement cost one InfluxDB round trip. Entries live `ttlMs` (short: the series change
 * every minute and a statement must not lag a payment for long). Keys are built by the
 * caller and include everything the value depends on.
 */
export class TtlCache {
  private readonly entries = new Map<string, { until: number; value: Promise<unknown> }>();
  private readonly listeners: (() => void)[] = [];
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 5000,
  ) {}

  /** Also called on clear(): stores kept elsewhere (stored results' versions, the live snapshot) follow a write in this process. */
  onClear(fn: () => void): void {
    this.listeners.push(fn);
  }

  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (this.ttlMs <= 0) return load();
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit.value as Promise<T>;
    const value = load();
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { until: now + this.ttlMs, value });
    // A failure must not be served from the cache.
    value.catch(() => this.entries.delete(key));
    return value;
  }

  /** After a write (payment, month close): the next read goes to the source. */
  clear(): void {
    this.entries.clear();
    for (const fn of this.listeners) fn();
  }
}
