import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSiteYaml, SiteFileError } from './index.ts';

const example = readFileSync(new URL('../../examples/site.example.yaml', import.meta.url), 'utf8');

function issuesOf(text: string): string[] {
  try {
    parseSiteYaml(text, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(SiteFileError);
    return (err as SiteFileError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected the site file to be rejected');
}

describe('site file', () => {
  it('loads the example unchanged', () => {
    const site = parseSiteYaml(example);
    expect(site.id).toBe('tj-plaza');
    expect(site.meters.map((m) => m.id)).toEqual(['M0', 'T101', 'T102', 'T103', 'C-ELEV', 'C-LOBBY']);
    expect(site.meters[3].maxW).toBe(300_000);
    expect(site.meters[0].registerModulusWh).toBe(100_000_000_000);
    expect(site.meters[1].maxGapMs).toBe(3_600_000);
    expect(site.loss).toEqual({ normalRate: '0.03', method: 'consumption' });
    expect(site.pools[0].accounts).toEqual(['A101', 'A102', 'A103']);
    expect(site.accounts[0]).toMatchObject({ openingBalance: '500.00', lowBalance: '100.00', lowBalanceHours: 48, areaM2: '120' });
    const v = site.tariffs[0].versions[0];
    expect(v.prices.peak).toBe('1.0532');
    expect(v.schedule[1].periods.map((p) => p.period)).toContain('sharp');
  });

  it('reads numbers as the decimal their text shows', () => {
    const site = parseSiteYaml(example.replace('normal_rate: 0.03', 'normal_rate: 0.1').replace('peak: "1.053200"', 'peak: 1.0532'));
    expect(site.loss.normalRate).toBe('0.1');
    expect(site.tariffs[0].versions[0].prices.peak).toBe('1.0532');
  });

  it('accepts max_gap as seconds or as a duration string', () => {
    expect(parseSiteYaml(example.replace('max_kw: 300', 'max_kw: 300\n    max_gap: 15m')).meters[3].maxGapMs).toBe(900_000);
    expect(parseSiteYaml(example.replace('max_kw: 300', 'max_kw: 300\n    max_gap: 90')).meters[3].maxGapMs).toBe(90_000);
  });

  const cases: [string, (s: string) => string, RegExp][] = [
    ['unknown key', (s) => s.replace('unit: 13,', 'unit: 13, colour: red,'), /meters\[3\]\.connection\.colour: unknown key 'colour'/],
    ['unknown top-level key', (s) => `${s}\nextra: 1\n`, /extra: unknown key/],
    ['dangling account', (s) => s.replace('account: A102', 'account: A999'), /meters\[2\]\.account: unknown account 'A999'/],
    ['dangling pool', (s) => s.replace('pool: lobby', 'pool: garage'), /meters\[5\]\.pool: unknown pool 'garage'/],
    ['dangling pool account', (s) => s.replace('accounts: [A101, A102]', 'accounts: [A101, A109]'), /pools\[1\]\.accounts\[1\]: unknown account 'A109'/],
    ['dangling tariff', (s) => s.replace('area_m2: 80,  tariff: commercial', 'area_m2: 80,  tariff: residential'), /accounts\[1\]\.tariff: unknown tariff 'residential'/],
    ['duplicate meter id', (s) => s.replace('id: T103', 'id: T102'), /meters\[3\]\.id: duplicate id 'T102'/],
    ['duplicate account id', (s) => s.replace('{ id: A103,', '{ id: A101,'), /accounts\[2\]\.id: duplicate id 'A101'/],
    ['schedule overlap', (s) => s.replace('{ from: "18:00", to: "19:00", period: peak }', '{ from: "18:00", to: "19:30", period: peak }'), /schedule\[1\]\.periods\[5\]: overlap: 19:00-19:30/],
    ['schedule gap', (s) => s.replace('{ from: "07:00", to: "08:00", period: flat }', '{ from: "07:00", to: "07:30", period: flat }'), /schedule\[0\]\.periods: gap: 07:30-08:00/],
    ['schedule short of midnight', (s) => s.replace('{ from: "23:00", to: "24:00", period: valley }\n          - months', '{ from: "23:00", to: "23:59", period: valley }\n          - months'), /gap: 23:59-24:00/],
    ['months not covered', (s) => s.replace('months: [7, 8]', 'months: [7]'), /gap: no schedule entry matches month 8/],
    ['period without a price', (s) => s.replace('sharp: "1.263840", ', ''), /periods\[5\]\.period: no price for period 'sharp'/],
    ['bad time zone', (s) => s.replace('Asia/Shanghai', 'Asia/Atlantis'), /site\.timezone: must be an IANA time zone/],
    ['bad price', (s) => s.replace('"1.053200"', '"1.05320012"'), /prices\.peak: must have at most 6 decimal places/],
    ['bad money', (s) => s.replace('"500.00"', '"five hundred"'), /accounts\[0\]\.opening_balance: must be a decimal number/],
    ['bad protocol', (s) => s.replace('protocol: dlt645', 'protocol: mbus'), /meters\[2\]\.connection\.protocol/],
    ['bad dlt645 address', (s) => s.replace('"000000001102"', '1102'), /meters\[2\]\.connection\.address/],
    ['tenant without account', (s) => s.replace('    account: A101\n', ''), /meters\[1\]\.account: tenant meter 'T101' needs an account/],
    ['no master', (s) => s.replace('role: master', 'role: common\n    pool: lobby'), /meters: a site needs at least one master meter/],
    ['two versions on one date', (s) => s.replace('    versions:\n', '    versions:\n      - effective_from: 2026-01-01\n        prices: { flat: 1 }\n        schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }]\n'), /effective_from: two versions take effect on 2026-01-01/],
    ['same unit twice on one endpoint', (s) => s.replace('unit: 22', 'unit: 21'), /meters\[5\]\.connection: same address as meters\[4\]/],
    ['bad YAML', (s) => `${s}\n  : : [\n`, /bad\.yaml|/],
  ];
  it.each(cases)('rejects %s with its path', (_name, mutate, expected) => {
    const text = mutate(example);
    expect(text).not.toBe(example);
    const issues = issuesOf(text);
    expect(issues.join('\n')).toMatch(expected);
  });

  it('rejects tariffs whose period layouts differ on a date', () => {
    const second = `  - id: other\n    versions:\n      - effective_from: 2026-06-01\n        prices: { flat: "0.5" }\n        schedule: [{ periods: [{ from: "00:00", to: "24:00", period: flat }] }]\n`;
    const issues = issuesOf(`${example}${second}`);
    expect(issues.join('\n')).toMatch(/tariffs\[1\]\.versions\[0\]\.schedule: on 2026-06-01 tariff 'other' has a different period layout than tariff 'commercial'/);
  });

  it('gives the line of the offending key', () => {
    try {
      parseSiteYaml(example.replace('account: A102', 'account: A999'), 'x.yaml');
    } catch (err) {
      expect((err as Error).message).toMatch(/x\.yaml:\d+: meters\[2\]\.account/);
      const line = (err as SiteFileError).issues[0].line!;
      expect(example.split('\n')[line - 1]).toContain('account: A102');
      return;
    }
    throw new Error('not rejected');
  });

  it('gives the line of a YAML syntax error (issue 11: the yaml library fills linePos only with prettyErrors)', () => {
    const text = example.replace('  normal_rate: 0.03', '  normal_rate: [0.03');
    try {
      parseSiteYaml(text, 'syntax.yaml');
    } catch (err) {
      const issue = (err as SiteFileError).issues[0];
      expect(issue.line).toBeGreaterThan(0);
      expect((err as Error).message).toMatch(/syntax\.yaml:\d+: \(top level\): /);
      expect((err as Error).message).not.toMatch(/at line \d+, column/);
      return;
    }
    throw new Error('not rejected');
  });

  it('refuses a YAML alias bomb, naming the file', () => {
    const bomb = `${example}\nx1: &a [q, q, q, q, q, q, q, q, q, q]\nx2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nx3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nx4: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\nx5: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n`;
    expect(() => parseSiteYaml(bomb, 'bomb.yaml')).toThrow(/^invalid site file bomb\.yaml:\n {2}bomb\.yaml: \(top level\): too many YAML aliases/);
  });

  it('a schema error does not hide the other problems: all are reported, with lines, in file order', () => {
    const text = example
      .replace('max_kw: 300', 'max_kw: lots') // schema (meters[3])
      .replace('account: A102', 'account: A999') // reference (meters[2])
      .replace('"500.00"', '"five hundred"') // schema (accounts[0]): A101 still exists for T101
      .replace('area_m2: 80,  tariff: commercial', 'area_m2: 80,  tariff: residential') // reference (accounts[1])
      .replace('unit: 22', 'unit: 21'); // same endpoint (meters[5] vs meters[4]) after an invalid meters[3]
    const issues = issuesOf(text);
    expect(issues).toEqual([
      "meters[2].account: unknown account 'A999'",
      'meters[3].max_kw: must be a decimal number, got "lots"',
      'meters[5].connection: same address as meters[4] (tcp 127.0.0.1:5020 unit 21)',
      'accounts[0].opening_balance: must be a decimal number, got "five hundred"',
      "accounts[1].tariff: unknown tariff 'residential'",
    ]);
  });

  it('site.first_day defaults to the first tariff date; site.contact is optional and checked', () => {
    expect(parseSiteYaml(example).firstDay).toBe('2026-01-01');
    const withKeys = example.replace('  currency: CNY', '  currency: CNY\n  first_day: 2025-12-01\n  contact: { name: Property office, phone: "+86 22 5555 0101", email: office@example.test }');
    expect(parseSiteYaml(withKeys)).toMatchObject({ firstDay: '2025-12-01', contact: { name: 'Property office', phone: '+86 22 5555 0101', email: 'office@example.test' } });
    expect(issuesOf(example.replace('  currency: CNY', '  currency: CNY\n  contact: { phone: call-me }')).join('\n')).toMatch(/site\.contact\.phone: must be a phone number/);
    expect(issuesOf(example.replace('  currency: CNY', '  currency: CNY\n  first_day: 1999-12-31')).join('\n')).toMatch(/site\.first_day: 1999-12-31 is outside the supported dates 2000-01-01 to 2199-12-31/);
    expect(issuesOf(example.replace('effective_from: 2026-01-01', 'effective_from: 0099-01-01')).join('\n')).toMatch(/effective_from: 0099-01-01 is outside the supported dates/);
  });
});
