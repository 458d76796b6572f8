/**
 * Architecture rules checked in `make test` (style.md practice 1): the billing core is
 * pure (no I/O, no clock source, no Node built-ins) and imports none of the apps; the
 * apps never import each other's internals except through the shared adapters.
 */
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
