import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Logger } from '../lib/logger.ts';
import { EXCEPTION, exceptionPdu } from './modbus-pdu.ts';
import type { SimulatedMeter } from './simulated-meter.ts';

/**
 * Modbus TCP server for many meters on one port, told apart by the MBAP unit id (as a
 * Modbus TCP-to-RS485 gateway or a multi-meter concentrator presents them).
 * MBAP header (Modbus Messaging on TCP/IP Implementation Guide V1.0b section 3.1.3):
 * transaction id (2), protocol id 0 (2), length of unit id + PDU (2), unit id (1).
 * A unit id no meter has gets exception 0x0B (gateway target device failed to respond),
 * what gateways answer for a silent slave.
 */
export class ModbusTcpServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly units: ReadonlyMap<number, SimulatedMeter>;
  private readonly log: Logger;

  constructor(units: ReadonlyMap<number, SimulatedMeter>, log: Logger) {
    this.units = units;
    this.log = log;
    this.server = createServer((socket) => this.onConnection(socket));
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`simulator: cannot listen for Modbus TCP on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 7) {
        const length = buf.readUInt16BE(4);
        if (buf.readUInt16BE(2) !== 0 || length < 2 || length > 254) {
          // Not Modbus (protocol id must be 0, PDU at most 253 bytes): drop the connection, as servers do.
          this.log.warn({ remote: socket.remoteAddress }, 'simulator: bad MBAP header, closing connection');
          socket.destroy();
          return;
        }
        if (buf.length < 6 + length) break;
        const frame = buf.subarray(0, 6 + length);
        buf = buf.subarray(6 + length);
        this.onFrame(socket, frame);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  }

  private onFrame(socket: Socket, frame: Buffer): void {
    const unit = frame[6];
    const pdu = frame.subarray(7);
    const meter = this.units.get(unit);
    let reply: Buffer | undefined;
    if (!meter) reply = exceptionPdu(pdu[0] ?? 0, EXCEPTION.GATEWAY_TARGET_FAILED);
    else {
      const out = meter.modbus(pdu);
      // TCP has no CRC: a corrupted reply is lost on the way, like silence.
      if (out.kind === 'reply') reply = out.pdu;
    }
    if (!reply) return;
    const head = Buffer.alloc(7);
    head.writeUInt16BE(frame.readUInt16BE(0), 0);
    head.writeUInt16BE(0, 2);
    head.writeUInt16BE(reply.length + 1, 4);
    head[6] = unit;
    if (!socket.destroyed) socket.write(Buffer.concat([head, reply]));
  }
}
