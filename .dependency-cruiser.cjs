/**
 * Architecture rules checked in `make test` (style.md practice 1): the billing core is
 * pure (no I/O, no clock source, no Node built-ins) and imports none of the apps; the
 * apps never import each other's internals except through the shared adapters.
 */
/** Test harness modules: not tests themselves, but only tests load them. */
const TEST_SUPPORT = '(^|/)(testing|test-support)(/|\\.ts$)';

module.exports = {
  forbidden: [
    {
      name: 'core-is-pure',
      comment: 'core/ must not do I/O: no Node built-ins and no I/O libraries',
      severity: 'error',
      from: { path: '^core/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-imports-no-app',
      comment: 'nothing in core/ imports collector, workers, api, cli, sim, influx, grafana or lib',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^(collector|workers|api|cli|sim|influx|grafana|lib)/' },
    },
    {
      name: 'core-only-pure-libraries',
      comment: 'core/ may use only pure libraries',
      severity: 'error',
      from: { path: '^core/' },
      to: { dependencyTypes: ['npm'], pathNot: 'node_modules/(decimal\\.js|zod|yaml)/' },
    },
    {
      name: 'apps-import-core-through-index',
      comment:
        'style.md practice 10: every money and time rule lives once in core and apps reach it only through core/index.ts, so a copy or a private entry point shows up here (issue 10)',
      severity: 'error',
      from: { path: '^(collector|workers|api|sim|cli|influx|lib|grafana)/' },
      to: { path: '^core/', pathNot: '^core/index\\.ts$' },
    },
    {
      name: 'no-app-internals',
      comment:
        "an app never imports another app's internal files, only its index.ts (the collector's wire formats also through collector/wire.ts, for the simulator); influx/ and lib/ are the shared adapters every app may use",
      severity: 'error',
      // Test harnesses (*/testing/, */test-support*) wire several apps together the way a
      // test file does; like test files they are outside this rule.
      from: { path: '^(collector|workers|api|sim|cli|grafana)/', pathNot: TEST_SUPPORT },
      to: { path: '^(collector|workers|api|sim|cli|grafana)/', pathNot: ['^$1/', '^(collector|workers|api|sim|cli|grafana)/index\\.ts$', '^collector/wire\\.ts$'] },
    },
    {
      name: 'adapters-import-no-app',
      comment: 'influx/ and lib/ are shared by every app, so they import none (the collector\'s Sample type lives in influx/sample.ts)',
      severity: 'error',
      from: { path: '^(influx|lib)/' },
      to: { path: '^(collector|workers|api|sim|cli|grafana)/' },
    },
    {
      name: 'line-protocol-only-in-influx',
      comment: 'line protocol is built only by the typed builders in influx/ (one file per area); apps call them instead of building Points',
      severity: 'error',
      from: { pathNot: ['^influx/', TEST_SUPPORT] },
      to: { path: 'node_modules/@influxdata/influxdb-client' },
    },
    {
      name: 'no-app-imports-cli',
      severity: 'error',
      from: { path: '^(core|collector|workers|api|sim|influx|grafana|lib)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(\\.test\\.ts$|/testcases/)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
