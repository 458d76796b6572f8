/** The collector's public API: used by `submeter collect`, the demo and the benches. */
export { startCollector, collectOnce, buildInputs, spoolSink, siteMultiplier } from './collector.ts';
export type { Collector, CollectorOptions, CollectorHealth } from './collector.ts';
export { MeterPoller } from './poller.ts';
export { Spool, SpoolFullError, Forwarder } from './spool/index.ts';
export { BusRegistry, SerialBus } from './bus/index.ts';
export { createInput, registerInput } from './inputs/index.ts';
export type { Sample, SampleSink } from './sample.ts';
export type { MeterInput } from './input.ts';
export { MeterReadError } from './input.ts';
export { importReadings } from './import/readings-import.ts';
export { createRelayDriver, relayUnsupported, loadRelaySecrets, RelaySecretsError } from './relay/index.ts';
export type { RelayDriver, RelayCommand, RelayReadback, CommandOutcome, RelayResources, RelaySecrets } from './relay/index.ts';
export { ModbusTcpPool } from './inputs/modbus-tcp/index.ts';
export { probeBus, parseUnits } from './probe/bus-probe.ts';
export type { ProbeFinding, ProbeOptions, ProbeResult } from './probe/bus-probe.ts';
export { siteSnippet } from './probe/site-snippet.ts';
export { sampleTable } from './sample-table.ts';
