import { readFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';
import type { ModbusMapName } from '../core/index.ts';

/**
 * The demo site: the example site file (examples/site.example.yaml: its master, tenants,
 * common meters, pools, loss and tariffs, unchanged) plus enough tenants to look like a
 * real mall floor plan. Most new meters are Modbus TCP on the example's port with one unit
 * id each (a meter gateway or concentrator); a few small kiosks sit on the RS485 bus with
 * the example's T101/T102. Deterministic: the same options give the same file.
 */

export interface DemoSiteOptions {
  /** Tenants added to the example's three. @defaultValue 40 */
  readonly tenants?: number;
  /** Of those, how many are Modbus RTU kiosks on the serial bus. @defaultValue 4 */
  readonly rtuTenants?: number;
  /** Host and port of the Modbus TCP meters (all of them, the example's too). @defaultValue the example's 127.0.0.1:5020 */
  readonly tcpHost?: string;
  readonly tcpPort?: number;
  /** The RS485 bus device name of the serial meters. @defaultValue the example's /dev/ttyUSB0 */
  readonly serialPort?: string;
  /** The example file to start from. @defaultValue examples/site.example.yaml of this repo */
  readonly exampleFile?: string;
}

interface Trade {
  readonly name: string;
  /** Floor area range, m2. */
  readonly area: readonly [number, number];
}

// Realistic mall tenants (invented names). Trade words drive the load model's profile
// (sim/load-model.ts: cafe/restaurant/noodle..., gym/fitness/yoga, supermarket/mart).
const TRADES: readonly Trade[] = [
  { name: 'Jade Tea House', area: [60, 90] },
  { name: 'Northwind Books', area: [150, 220] },
  { name: 'Blue Lotus Noodles', area: [90, 140] },
  { name: 'Mei Fashion', area: [110, 180] },
  { name: 'Pixel Phones', area: [45, 70] },
  { name: 'Little Sprout Kids', area: [120, 200] },
  { name: 'Harbor Optics', area: [40, 60] },
  { name: 'Golden Wok Restaurant', area: [220, 320] },
  { name: 'FreshMart Supermarket', area: [650, 900] },
  { name: 'Silver Needle Tailor', area: [30, 45] },
  { name: 'Cloud Nine Bakery', area: [50, 80] },
  { name: 'Summit Outdoor', area: [160, 240] },
  { name: 'Lumen Home Lighting', area: [120, 180] },
  { name: 'Red Lantern Hotpot', area: [260, 380] },
  { name: 'Zen Yoga Studio', area: [140, 200] },
  { name: 'Orchid Cosmetics', area: [60, 90] },
  { name: 'Maple Shoes', area: [80, 120] },
  { name: 'Bright Smile Dental', area: [90, 130] },
  { name: 'Urban Denim', area: [100, 150] },
  { name: 'Panda Toys', area: [90, 140] },
  { name: 'Sunrise Pharmacy', area: [70, 110] },
  { name: 'Echo Music', area: [60, 100] },
  { name: 'Willow Flowers', area: [25, 40] },
  { name: 'Iron Temple Fitness', area: [450, 650] },
  { name: 'Copper Kettle Cafe', area: [70, 110] },
  { name: 'Nova Electronics', area: [180, 260] },
  { name: 'Pearl Jewellery', area: [45, 70] },
  { name: 'Bamboo Garden Restaurant', area: [200, 300] },
  { name: 'Swift Sports', area: [200, 280] },
  { name: 'Ink & Paper Stationery', area: [50, 80] },
  { name: 'Velvet Lingerie', area: [40, 60] },
  { name: 'Happy Paws Pet Shop', area: [70, 110] },
  { name: 'Star Cinema Snacks', area: [30, 50] },
  { name: 'Crystal Watches', area: [35, 55] },
  { name: 'Morning Dew Juice Bar', area: [25, 40] },
  { name: 'Atlas Travel', area: [40, 60] },
  { name: 'Lotus Spa', area: [160, 240] },
  { name: 'Maker Hobby', area: [80, 120] },
  { name: 'Seaside Sushi Restaurant', area: [120, 180] },
  { name: 'Tiny Kiosk Phone Repair', area: [10, 18] },
  { name: 'Sweet Spot Ice Cream', area: [20, 35] },
  { name: 'Dragon Gate Dim Sum Restaurant', area: [180, 260] },
];

const THREE_PHASE: readonly ModbusMapName[] = ['sdm630', 'dtsu666', 'adw300'];
const SINGLE_PHASE: readonly ModbusMapName[] = ['sdm120', 'ddsu666', 'dds238'];

/** The demo site file's text, valid under core/site's schema. */
export function demoSiteYaml(opts: DemoSiteOptions = {}): string {
  const n = opts.tenants ?? 40;
  const nRtu = Math.min(opts.rtuTenants ?? 4, n);
  if (!Number.isInteger(n) || n < 0 || n > 150) throw new Error(`demo site: tenants must be an integer 0..150 (Modbus TCP unit ids 100..249), got ${opts.tenants}`);
  const exampleFile = opts.exampleFile ?? new URL('../examples/site.example.yaml', import.meta.url);
  const doc = parseDocument(readFileSync(exampleFile, 'utf8'));
  const meters = doc.get('meters');
  const accounts = doc.get('accounts');
  if (!isSeq(meters) || !isSeq(accounts)) throw new Error('demo site: the example file has no meters/accounts lists');
  doc.setIn(['site', 'id'], 'plaza-demo');
  doc.setIn(['site', 'name'], 'Plaza (demo, simulated)');

  const tcpHost = opts.tcpHost;
  const tcpPort = opts.tcpPort;
  const serialPort = opts.serialPort;
  for (const item of meters.items) {
    if (!isMap(item)) continue;
    const conn = item.get('connection');
    if (!isMap(conn)) continue;
    if (conn.get('protocol') === 'modbus-tcp') {
      if (tcpHost) conn.set('host', tcpHost);
      if (tcpPort) conn.set('port', tcpPort);
    } else if (serialPort) conn.set('port', serialPort);
  }

  const flow = (obj: Record<string, unknown>) => {
    const node = doc.createNode(obj);
    node.flow = true;
    return node;
  };
  for (let i = 0; i < n; i++) {
    const trade = TRADES[i % TRADES.length];
    const round = Math.floor(i / TRADES.length);
    // Floors 1-3, shop numbers 104.. on the ground floor (101-103 are the example's).
    const floor = 1 + Math.floor(i / 15);
    const no = floor * 100 + (floor === 1 ? 4 : 1) + (i % 15);
    const id = `T${no}`;
    const acct = `A${no}`;
    const area = trade.area[0] + ((i * 37) % (trade.area[1] - trade.area[0] + 1));
    const name = `${trade.name}${round > 0 ? ` ${round + 1}` : ''} (${no})`;
    const rtu = i >= n - nRtu;
    const single = area < 80;
    const map = single ? SINGLE_PHASE[i % SINGLE_PHASE.length] : THREE_PHASE[i % THREE_PHASE.length];
    const connection = rtu
      ? { protocol: 'modbus-rtu', port: serialPort ?? '/dev/ttyUSB0', baud: 9600, unit: 31 + (i - (n - nRtu)), map: SINGLE_PHASE[i % SINGLE_PHASE.length] }
      : { protocol: 'modbus-tcp', host: tcpHost ?? '127.0.0.1', port: tcpPort ?? 5020, unit: 100 + i, map };
    // max_kw: a generous breaker-sized limit, so only injected spikes trip the spike rule.
    const maxKw = Math.max(20, Math.ceil((area * 0.35) / 10) * 10);
    meters.add(flow({ id, role: 'tenant', account: acct, max_kw: maxKw, connection }));
    const opening = (200 + ((i * 53) % 9) * 100).toFixed(2);
    accounts.add(flow({ id: acct, name, area_m2: area, tariff: 'commercial', opening_balance: opening, low_balance: '100.00', ...(i % 3 === 0 ? { low_balance_hours: 48 } : {}) }));
  }
  // What the grid charges the property for the master meter (billing.md section 8), so
  // `submeter reconcile` and Grafana's recovery panel work on the demo: a copy of the
  // commercial tariff's layout (periods are site-wide) at the grid's lower prices, and a
  // 10 % resale markup cap.
  const tariffs = doc.get('tariffs');
  if (isSeq(tariffs) && !doc.has('utility')) {
    const commercial = tariffs.items.find((t) => isMap(t) && t.get('id') === 'commercial');
    if (isMap(commercial)) {
      const grid = commercial.clone() as typeof commercial;
      grid.set('id', 'grid');
      grid.set('name', 'Utility supply (grid), demo prices');
      const versions = grid.get('versions');
      if (isSeq(versions)) for (const v of versions.items) if (isMap(v)) v.set('prices', flow({ sharp: '1.102000', peak: '0.918400', flat: '0.612300', valley: '0.306200' }));
      tariffs.add(grid);
      doc.set('utility', flow({ tariff: 'grid', markup_cap: '0.20' }));
    }
  }
  const header = `# Demo site generated by sim/demo-site.ts (submeter sim --write-demo-site): the example\n# site plus ${n} simulated tenants. Regenerate rather than edit.\n`;
  return header + doc.toString({ lineWidth: 0 });
}
