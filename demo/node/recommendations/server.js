'use strict';
// The demo's "recommendations" service: GET /recommendations?skus=sku-1,sku-2 asks the catalog
// (GET $CATALOG_URL/catalog/<sku>) about one or two related skus. No tracing code here: the
// OpenTelemetry SDK is loaded with `node --require ./instrumentation.js server.js`.
const http = require('node:http');
const pino = require('pino');
const { ecsFormat } = require('@elastic/ecs-pino-format');

const PORT = Number(process.env.PORT || 8080);
const CATALOG_URL = (process.env.CATALOG_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
const CATALOG_TIMEOUT_MS = 5000;
const MAX_RELATED = 2;
const SKU_COUNT = 12; // the demo shop sells sku-1 .. sku-12

const log = pino(
  ecsFormat({ serviceName: process.env.OTEL_SERVICE_NAME || 'recommendations', apmIntegration: false }),
  process.env.DEMO_LOG_FILE
    ? pino.destination({ dest: process.env.DEMO_LOG_FILE, append: true, mkdir: true, sync: true })
    : pino.destination(1),
);

// "Customers who bought sku-3 also bought sku-4."
function related(sku) {
  const match = /^sku-(\d+)$/.exec(sku);
  return match ? `sku-${(Number(match[1]) % SKU_COUNT) + 1}` : sku;
}

// Node's global fetch (undici): the undici instrumentation makes its CLIENT span and injects the
// propagators' headers (B3 multi in the demo). http.get would do as well (http instrumentation).
async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(CATALOG_TIMEOUT_MS) });
  } catch (error) {
    throw new Error(`GET ${url} failed: ${error.cause ? error.cause.message : error.message}`);
  }
  if (response.status !== 200) {
    throw new Error(`catalog answered ${response.status} to GET ${url}`);
  }
  return response.json();
}

async function recommend(skus) {
  const wanted = [...new Set(skus.map(related))].slice(0, MAX_RELATED);
  const found = [];
  for (const sku of wanted) {
    const item = await getJson(`${CATALOG_URL}/catalog/${encodeURIComponent(sku)}`);
    found.push({ sku, title: item.title, price: item.price });
  }
  return found;
}

function reply(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

const server = http.createServer((request, response) => {
  const url = new URL(request.url, 'http://localhost');
  if (request.method === 'GET' && url.pathname === '/healthz') {
    reply(response, 200, { status: 'ok' });
    return;
  }
  if (request.method !== 'GET' || url.pathname !== '/recommendations') {
    reply(response, 404, { error: `no route for ${request.method} ${url.pathname}` });
    return;
  }
  const skus = (url.searchParams.get('skus') || '').split(',').map((s) => s.trim()).filter(Boolean);
  if (skus.length === 0) {
    log.warn('recommendations asked without skus');
    reply(response, 400, { error: 'skus is required, e.g. ?skus=sku-1,sku-2' });
    return;
  }
  log.info({ skus }, 'recommending for %d sku(s)', skus.length);
  recommend(skus).then(
    (recommendations) => {
      log.info({ count: recommendations.length }, 'recommended %s', recommendations.map((r) => r.sku).join(','));
      reply(response, 200, { recommendations });
    },
    (error) => {
      log.error({ err: error }, 'catalog call failed: %s', error.message);
      reply(response, 502, { error: `catalog call failed: ${error.message}` });
    },
  );
});

server.listen(PORT, '127.0.0.1', () => {
  log.info('recommendations listening on 127.0.0.1:%d, catalog at %s', PORT, CATALOG_URL);
});
