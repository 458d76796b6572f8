/**
 * Per-bus command budget: at most `perMinute` commands in any 60 s on one bus, so a
 * site-wide run of trips (a tariff change, a mass payment failure) cannot flood an RS485
 * line or a gateway. Returns how many more may go now.
 */
export function commandBudget(sentAt: readonly number[], now: number, perMinute: number): number {
  const recent = sentAt.filter((t) => t > now - 60_000 && t <= now).length;
  return Math.max(0, perMinute - recent);
}
