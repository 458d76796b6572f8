/**
 * How compose.yaml runs the workers, which the scale soak (bench/scale.bench.ts) runs the
 * same way: `deploy.replicas` defaults to SUBMETER_WORKER_REPLICAS=2 processes on the same
 * queues, with NODE_OPTIONS giving V8 a larger young generation. grafana/compose.test.ts
 * holds these equal to compose.yaml.
 */
export const COMPOSE_WORKER_REPLICAS = 2;
export const COMPOSE_WORKERS_NODE_OPTIONS = '--max-semi-space-size=32';
