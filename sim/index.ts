/** The simulator's public surface: `submeter sim`, the demo and the benches import from here. */
export { startSimulator } from './simulator.ts';
export type { Simulator, SimulatorOptions, TcpEndpoint, SerialEndpoint, Fault, FrameMatch, LineTiming, SerialBusContext, SerialFrameHandler, MeterReading, SimulatedMeter } from './simulator.ts';
export { demoSiteYaml } from './demo-site.ts';
export type { DemoSiteOptions } from './demo-site.ts';
export { dlt645Handler } from './dlt645/handler.ts';
export { parseFault, validateFault, FAULT_KINDS } from './faults.ts';
export { MODEL_EPOCH, SLOT_MS, SiteLoadModel, simulateReadings } from './load-model.ts';
export type { LoadModelOptions, SimulateReadingsOptions } from './load-model.ts';
export { READINGS_CSV_HEADER, readingCsvLine, writeReadingsCsv, whToKwhText } from './readings-csv.ts';
export * from './providers/index.ts';
