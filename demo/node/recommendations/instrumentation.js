'use strict';
// OpenTelemetry for the demo's Node.js service, loaded before the app:
//   node --require ./instrumentation.js server.js
// Everything the environment can say comes from the standard variables, read by NodeSDK itself:
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_ENDPOINT / _PROTOCOL,
// OTEL_TRACES_EXPORTER, OTEL_PROPAGATORS (b3multi in the demo), OTEL_BSP_SCHEDULE_DELAY, ...
// Only what no variable expresses is set here: which instrumentations run, and the field names
// the pino instrumentation gives the trace context in log records (ECS: trace.id, span.id).
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { getNodeAutoInstrumentations } = require('@opentelemetry/auto-instrumentations-node');

const sdk = new NodeSDK({
  instrumentations: [
    getNodeAutoInstrumentations({
      // Noise: a span per file read, DNS lookup or socket says nothing about the request.
      '@opentelemetry/instrumentation-fs': { enabled: false },
      '@opentelemetry/instrumentation-dns': { enabled: false },
      '@opentelemetry/instrumentation-net': { enabled: false },
      '@opentelemetry/instrumentation-http': {
        ignoreIncomingRequestHook: (request) => request.url === '/healthz',
        // Plain node:http knows no routes, so SERVER spans would all be named "GET": name them
        // after the one route the service has (a fixed path, so a low-cardinality name).
        requestHook: (span, request) => {
          if ('httpVersion' in request && request.url.split('?')[0] === '/recommendations') {
            span.updateName(`${request.method} /recommendations`);
            span.setAttribute('http.route', '/recommendations');
          }
        },
      },
      '@opentelemetry/instrumentation-pino': {
        logKeys: { traceId: 'trace.id', spanId: 'span.id', traceFlags: 'trace.flags' },
        // Log lines go to a file (shipped like Filebeat would), not through the OTel logs SDK.
        disableLogSending: true,
      },
    }),
  ],
});
sdk.start();

// Flush the batched spans before leaving; the demo and the tests stop the service with SIGTERM.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    sdk
      .shutdown()
      .catch((error) => console.error('OpenTelemetry shutdown failed:', error))
      .finally(() => process.exit(0));
  });
}
