// Prometheus metrics, on a registry of our own so tests can build several apps in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'berth_process_' });
  const m = {
    registry,
    sandboxes: new Gauge({ name: 'berth_sandboxes', help: 'Sandboxes by state', labelNames: ['state'], registers: [registry] }),
    creation: new Histogram({
      name: 'berth_sandbox_creation_seconds',
      help: 'Time to create a session, warm (from the pool) or cold',
      labelNames: ['kind'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30],
      registers: [registry],
    }),
    terminalBytes: new Counter({ name: 'berth_terminal_bytes_total', help: 'Bytes through web terminals', labelNames: ['direction'], registers: [registry] }),
    terminals: new Gauge({ name: 'berth_terminals_open', help: 'Open terminal connections', registers: [registry] }),
    errors: new Counter({ name: 'berth_errors_total', help: 'Errors by code', labelNames: ['code'], registers: [registry] }),
    dnsQueries: new Counter({
      name: 'berth_sandbox_dns_queries_total',
      help: 'DNS queries from sandboxes by answer (allowed, refused, failed, malformed)',
      labelNames: ['answer'],
      registers: [registry],
    }),
    removed: new Counter({ name: 'berth_sandboxes_removed_total', help: 'Sessions removed by reason', labelNames: ['reason'], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
