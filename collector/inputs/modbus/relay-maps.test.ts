import { describe, expect, it } from 'vitest';
import { MODBUS_MAPS, MODBUS_RELAY_MAPS } from '../../../core/site/schema.ts';
import { MODBUS_REGISTER_MAPS, isReadable, relayMaps } from './maps.ts';

describe('relay entries of the Modbus maps (issue 13)', () => {
  it('every map says whether it has a relay; a map without one says why', () => {
    for (const name of MODBUS_MAPS) {
      const r = MODBUS_REGISTER_MAPS[name].relay;
      expect(r, name).toBeDefined();
      if (r.kind === 'none') expect(r.note.length, name).toBeGreaterThan(10);
      else expect(r.source.length, name).toBeGreaterThan(10);
    }
  });

  it("the core's list of relay maps (site-file check) is the maps' own", () => {
    expect([...MODBUS_RELAY_MAPS].sort()).toEqual(relayMaps().sort());
  });

  it('a holding-register relay reads back inside the readable ranges, with distinct trip and close values', () => {
    let checked = 0;
    for (const name of relayMaps()) {
      const m = MODBUS_REGISTER_MAPS[name];
      const r = m.relay;
      if (r.kind !== 'holding') continue;
      expect(r.trip).not.toBe(r.close);
      expect(r.status.open).not.toBe(r.status.closed);
      expect(isReadable(m, r.status.address, 1)).toBe(true);
      checked++;
    }
    // Not vacuous: at least one map (the DDS238) has a holding-register relay.
    expect(checked).toBeGreaterThan(0);
  });
});
