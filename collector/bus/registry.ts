import type { SerialBusOptions } from './serial-bus.ts';
import { SerialBus } from './serial-bus.ts';
import type { SerialLink } from './serial-link.ts';

/**
 * One SerialBus per device path, shared by every input on that port whatever its
 * protocol (Modbus RTU and DL/T 645 meters on one RS485 line). Buses on different paths
 * run in parallel; each is strictly one transaction at a time.
 */
export class BusRegistry {
  private readonly buses = new Map<string, SerialBus>();
  private readonly opts: SerialBusOptions & { readonly link?: (path: string) => SerialLink };

  constructor(opts: SerialBusOptions & { readonly link?: (path: string) => SerialLink } = {}) {
    this.opts = opts;
  }

  /** The bus of a device path, created on first use (the device opens on the first transaction). */
  get(path: string): SerialBus {
    let bus = this.buses.get(path);
    if (!bus) {
      bus = new SerialBus(this.opts.link ? this.opts.link(path) : path, this.opts);
      this.buses.set(path, bus);
    }
    return bus;
  }

  all(): SerialBus[] {
    return [...this.buses.values()];
  }

  async closeAll(): Promise<void> {
    const buses = this.all();
    this.buses.clear();
    await Promise.all(buses.map((b) => b.close()));
  }
}
