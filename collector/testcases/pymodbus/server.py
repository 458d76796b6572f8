#!/usr/bin/python3
"""An independent Modbus peer for the collector's interoperability test: Debian's
python3-pymodbus (3.0) serving known float32 values, packed here with struct (not with
our register-map encoder), so a wrong word order or scale in the collector shows up.

usage: server.py tcp PORT SPEC.json | server.py rtu DEVICE BAUD SPEC.json
SPEC: {"<unit>": {"fc": 3|4, "floats": {"<address>": value, ...}, "ints": {"<address>": [uint16, ...]}}}
Prints "ready" on stdout once it serves.
"""
import asyncio
import json
import logging
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.async_io import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

logging.basicConfig(level=logging.ERROR)
SIZE = 0x4100  # covers every address of the maps under test (DTSU666 energy at 0x401E)


def slave(spec):
    regs = [0] * SIZE
    for addr, value in spec.get("floats", {}).items():
        hi, lo = struct.unpack(">HH", struct.pack(">f", float(value)))  # high word first
        regs[int(addr)] = hi
        regs[int(addr) + 1] = lo
    for addr, words in spec.get("ints", {}).items():
        for i, w in enumerate(words):
            regs[int(addr) + i] = w
    block = ModbusSequentialDataBlock(0, regs)
    empty = ModbusSequentialDataBlock(0, [0] * SIZE)
    # zero_mode: wire address n is register n (pymodbus otherwise adds 1).
    if spec.get("fc", 3) == 4:
        return ModbusSlaveContext(ir=block, hr=empty, di=empty, co=empty, zero_mode=True)
    return ModbusSlaveContext(hr=block, ir=empty, di=empty, co=empty, zero_mode=True)


async def main():
    mode = sys.argv[1]
    spec = json.load(open(sys.argv[-1]))
    context = ModbusServerContext(slaves={int(u): slave(s) for u, s in spec.items()}, single=False)
    if mode == "tcp":
        server = await StartAsyncTcpServer(context=context, address=("127.0.0.1", int(sys.argv[2])), framer=ModbusSocketFramer, defer_start=True, allow_reuse_address=True)
    else:
        server = await StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=sys.argv[2], baudrate=int(sys.argv[3]), timeout=0.01, defer_start=True)
        await server.start()
    print("ready", flush=True)
    if mode == "tcp":
        await server.serve_forever()
    else:
        await asyncio.Event().wait()


asyncio.run(main())
