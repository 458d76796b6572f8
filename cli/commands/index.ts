import type { Command } from 'commander';
import { registerCheckSite } from './check-site.ts';
import { registerBill } from './bill.ts';
import { registerAdvise } from './advise.ts';
import { registerReconcile } from './reconcile.ts';
import { registerWorkers } from './workers.ts';
import { registerPay } from './pay.ts';
import { registerApi } from './api.ts';
import { registerToken } from './token.ts';
import { registerSim } from './sim.ts';
import { registerCollect } from './collect.ts';
import { registerImport } from './import.ts';
import { registerDemo } from './demo.ts';
import { registerRelay } from './relay.ts';
import { registerFinalStatement } from './final-statement.ts';
import { registerProbe } from './probe.ts';
import { registerBackup } from './backup.ts';

/** Every subcommand's register function. Add one line per command file. */
export const commands: ((program: Command) => void)[] = [registerCheckSite, registerBill, registerAdvise, registerReconcile, registerWorkers, registerPay, registerSim, registerApi, registerToken, registerCollect, registerImport, registerDemo, registerRelay, registerFinalStatement, registerProbe, registerBackup];
