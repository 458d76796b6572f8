import { describe, expect, it } from 'vitest';
import { buildCalendar, cutCalendar, dedupePayments, largestRemainder, meterTimeline, occupantAt, parseSiteYaml, siteIndex, uncovered } from '../index.ts';
import type { PaymentRow } from '../index.ts';
import { divideAmong } from './shares.ts';

/** billing.md section 11: the site-file rules of tenancy and the occupancy arithmetic. */

const TARIFF = `
tariffs:
  - id: t
    versions:
      - effective_from: 2026-01-01
        prices: { flat: 1, peak: 2 }
        schedule:
          - periods:
              - { from: "00:00", to: "08:00", period: flat }
              - { from: "08:00", to: "24:00", period: peak }
`;

function site(body: string) {
  return parseSiteYaml(`site: { id: s, timezone: Asia/Shanghai${body.includes('LANDLORD') ? ', landlord_account: L' : ''} }\n${body.replace('LANDLORD', '')}${TARIFF}`, 'site.yaml');
}

describe('tenancy in the site file', () => {
  it('refuses overlapping occupants of one meter, naming both and the overlap', () => {
    expect(() =>
      site(`meters:
  - { id: M, role: master }
  - { id: T1, role: tenant, accounts: [A1, A2] }
accounts:
  - { id: A1, tariff: t, move_out: "2026-10-15T12:00:00+08:00" }
  - { id: A2, tariff: t, move_in: 2026-10-15 }
`),
    ).toThrow("site.yaml:4: meters[1].accounts: occupants 'A1' and 'A2' of meter 'T1' overlap from 2026-10-15T00:00:00+08:00 to 2026-10-15T12:00:00+08:00");
  });

  it('refuses move_out before move_in, and a landlord that moves', () => {
    expect(() => site(`meters:\n  - { id: M, role: master }\naccounts:\n  - { id: A1, tariff: t, move_in: 2026-10-15, move_out: 2026-10-14 }\n`)).toThrow(/accounts\[0\]\.move_out: must be after move_in \(2026-10-15T00:00:00\+08:00\)/);
    // Occupancy weights count seconds: a fraction of a second is refused, naming the key.
    expect(() => site(`meters:\n  - { id: M, role: master }\naccounts:\n  - { id: A1, tariff: t, move_out: "2026-10-15T14:37:00.5+08:00" }\n`)).toThrow(/accounts\[0\]\.move_out: must be a whole second/);
    expect(() => site(`LANDLORD\nmeters:\n  - { id: M, role: master }\naccounts:\n  - { id: L, tariff: t, move_in: 2026-10-15 }\n`)).toThrow(/site\.landlord_account: the landlord account 'L' bears vacant units at any time/);
    expect(() => site(`meters:\n  - { id: M, role: master }\n  - { id: T1, role: tenant, account: A1, accounts: [A1] }\naccounts:\n  - { id: A1, tariff: t }\n`)).toThrow(/give either 'account' or 'accounts', not both/);
  });

  it('refuses a pool that would have nobody, unless there is a landlord', () => {
    const body = `meters:
  - { id: M, role: master }
  - { id: T1, role: tenant, accounts: [A1, A2] }
  - { id: C, role: common, pool: P }
accounts:
  - { id: A1, tariff: t, move_out: 2026-10-10 }
  - { id: A2, tariff: t, move_in: 2026-10-10 }
  - { id: B, tariff: t, move_in: 2026-09-01 }
pools:
  - { id: P, method: equal, accounts: [B] }
`;
    expect(() => site(body)).toThrow(/pools\[0\]\.accounts: no account of pool 'P' occupies until 2026-09-01T00:00:00\+08:00/);
    const ok = site(`LANDLORD\n${body.replace('accounts:\n', 'accounts:\n  - { id: L, tariff: t }\n')}`);
    expect(ok.landlordAccount).toBe('L');
  });

  it('successive occupants without a gap need no landlord; the timeline names each', () => {
    const s = site(`meters:
  - { id: M, role: master }
  - { id: T1, role: tenant, accounts: [A2, A1] }
accounts:
  - { id: A1, tariff: t, move_out: "2026-10-15T14:37:00+08:00" }
  - { id: A2, tariff: t, move_in: "2026-10-15T14:37:00+08:00" }
`);
    const t = Date.parse('2026-10-15T14:37:00+08:00');
    expect(meterTimeline(s, s.meters[1]).map((x) => [x.from, x.to, x.account, x.vacant])).toEqual([
      [-Infinity, t, 'A1', false],
      [t, Infinity, 'A2', false],
    ]);
    expect(occupantAt(s, s.meters[1], t - 1).account).toBe('A1');
    expect(occupantAt(s, s.meters[1], t).account).toBe('A2');
    expect(s.meters[1].account).toBeUndefined();
  });
});

describe('occupancy arithmetic', () => {
  it('uncovered() finds the gaps of a set of intervals', () => {
    expect(uncovered([[5, 10], [0, 3]])).toEqual([[-Infinity, 0], [3, 5], [10, Infinity]]);
    expect(uncovered([[-Infinity, 4], [4, Infinity]])).toEqual([]);
  });

  it('cutCalendar splits a segment at a move instant and keeps its day and period', () => {
    const s = site('meters:\n  - { id: M, role: master }\n');
    const cal = buildCalendar(s, '2026-10-01', '2026-10-02');
    const t = Date.parse('2026-10-01T14:37:00+08:00');
    const cut = cutCalendar(cal, [t, cal.start[0], Date.parse('2026-10-05T00:00:00+08:00')]);
    expect(cut.segments).toBe(cal.segments + 1);
    expect(Array.from(cut.start)).toEqual([cal.start[0], cal.start[1], t, cal.start[2]]);
    expect(Array.from(cut.period)).toEqual([cal.period[0], cal.period[1], cal.period[1]]);
    expect(cutCalendar(cal, [])).toBe(cal);
  });

  it('area weights in a partly occupied cell may pass 2^53: exact with BigInt', () => {
    const s = site(`LANDLORD
meters:
  - { id: M, role: master }
accounts:
  - { id: L, tariff: t }
  - { id: A, tariff: t, area_m2: 90000000.5, move_out: 2026-10-02 }
  - { id: B, tariff: t, area_m2: 90000000.25 }
`);
    const idx = siteIndex(s);
    const day = 90_000; // 25 h of seconds
    expect(idx.accountIds).toEqual(['A', 'B', 'L']);
    const got = divideAmong(idx, 'area', [0, 1], [0, 0, 0], 1_000_001, { cellS: day, occupiedS: [day - 1, day, day] }).shares;
    // Weights 900000005000 x 89999 and 900000002500 x 90000 (about 8.1e16): the same split as exact rationals.
    const wA = 900_000_005_000n * 89_999n;
    const wB = 900_000_002_500n * 90_000n;
    expect(got).toEqual([
      // Two shares: the one Wh left goes to the larger remainder, i.e. A's quota rounded half up.
      [0, Number((1_000_001n * wA) / (wA + wB)) + (((1_000_001n * wA) % (wA + wB)) * 2n >= wA + wB ? 1 : 0)],
      [1, 1_000_001 - got[0][1]],
    ]);
    expect(largestRemainder(7, [3n, 0n, 4n], ['a', 'b', 'c'])).toEqual([3, 0, 4]);
  });

  it('nobody of the division there: the landlord takes it all', () => {
    const s = site(`LANDLORD
meters:
  - { id: M, role: master }
accounts:
  - { id: L, tariff: t }
  - { id: A, tariff: t, move_out: 2026-10-02 }
`);
    expect(divideAmong(siteIndex(s), 'equal', [0], [0, 0], 500, { cellS: 86_400, occupiedS: [0, 86_400] }).shares).toEqual([[1, 500]]);
  });
});

describe('payment content with kinds (section 1 as amended by issue 11, section 11 rule 7)', () => {
  const T = Date.parse('2026-10-05T10:00:00+08:00');
  it('a refund, a deposit or a transfer retried at another instant is the same payment; another kind under the reference is a conflict', () => {
    const rows: PaymentRow[] = [
      { time: T, account: 'A1', fen: -3000, reference: 'RF-1', kind: 'refund' },
      { time: T + 60_000, account: 'A1', fen: -3000, reference: 'RF-1', kind: 'refund' }, // a retry stamped "now"
      { time: T + 90_000, account: 'A1', fen: -3000, reference: 'RF-1' }, // a plain payment of -30.00: another content
      { time: T, account: 'A1', fen: 2000, reference: 'TR-1', kind: 'transfer' },
      { time: T, account: 'A2', fen: -2000, reference: 'TR-1', kind: 'transfer' },
      { time: T + 5_000, account: 'A1', fen: 2000, reference: 'TR-1', kind: 'transfer' }, // the transfer retried
      { time: T + 5_000, account: 'A2', fen: -2000, reference: 'TR-1', kind: 'transfer' },
      { time: T, account: 'A1', fen: 50000, reference: 'DEP-1', kind: 'deposit' },
      { time: T + 1, account: 'A1', fen: 50000, reference: 'DEP-1', kind: 'deposit' },
    ];
    const { payments, flags } = dedupePayments(rows);
    expect(payments.map((p) => [p.reference, p.account, p.fen, p.kind, p.time - T])).toEqual([
      ['DEP-1', 'A1', 50000, 'deposit', 0],
      ['RF-1', 'A1', -3000, 'refund', 0],
      ['TR-1', 'A1', 2000, 'transfer', 0],
      ['TR-1', 'A2', -2000, 'transfer', 0],
    ]);
    expect(flags.map((f) => f.detail)).toEqual([`reference RF-1: A1 -30.00 rejected, the reference is already A1 -30.00 refund at ${new Date(T).toISOString()}`]);
  });
});

