// Reference webhook bridge for the ingress benchmark (docs/benchmarks.md), written the
// way a team would write it from Duro's webhook documentation: node:http, the
// signature checked as the documentation shows (HMAC-SHA256 hex of the raw body,
// constant-time compare), kafkajs with an idempotent producer (acks = -1), and a 2xx
// only after the broker acknowledged the record. One process, one producer.
//
//   KAFKA_BOOTSTRAP_SERVERS=H:P DURO_WEBHOOK_SECRETS_FILE=F [DURO_RAW_TOPIC=T] \
//   [PORT=0] node server.js
//
// Prints "listening on port N" on stdout once Kafka is connected and the port is open.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const { Kafka, logLevel } = require('kafkajs');

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS || '127.0.0.1:9092';
const topic = process.env.DURO_RAW_TOPIC || 'duro.webhooks.raw';
const port = Number(process.env.PORT || 0);
const secret = (process.env.DURO_WEBHOOK_SECRET ||
  fs.readFileSync(process.env.DURO_WEBHOOK_SECRETS_FILE, 'utf8')).trim();
const MAX_BODY = 64 * 1024;

const kafka = new Kafka({
  clientId: 'duro-node-ref',
  brokers: bootstrap.split(','),
  logLevel: logLevel.WARN,
});
const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });

function reply(res, status, obj) {
  const body = JSON.stringify(obj) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function verify(header, body) {
  if (typeof header !== 'string' || !/^sha256=[0-9a-fA-F]{64}$/.test(header)) return false;
  const want = Buffer.from(header.slice(7), 'hex');
  const got = crypto.createHmac('sha256', secret).update(body).digest();
  return crypto.timingSafeEqual(want, got);
}

async function handle(req, res, body) {
  const sig = req.headers['x-duro-signature'];
  if (!verify(sig, body)) return reply(res, 401, { status: 'error', error: 'bad signature' });
  let ev;
  try {
    ev = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return reply(res, 400, { status: 'error', error: 'not JSON' });
  }
  const data = ev.data || {};
  const key = String(data.item_id || data.change_order_id || ev.id || '');
  const headers = {
    'duro-event': String(ev.event || ''),
    'duro-event-id': String(ev.id || ''),
    'duro-webhook-id': String(ev.webhook_id || ''),
    'duro-signature': sig,
    'received-at': new Date().toISOString(),
    'content-type': req.headers['content-type'] || 'application/json',
  };
  try {
    const [meta] = await producer.send({
      topic,
      acks: -1,
      timeout: 9000,
      messages: [{ key, value: body, headers, timestamp: String(Date.now()) }],
    });
    reply(res, 200, {
      status: 'accepted',
      event_id: ev.id,
      topic,
      partition: meta.partition,
      offset: Number(meta.baseOffset),
    });
  } catch (e) {
    res.setHeader('Retry-After', '5');
    reply(res, 503, { status: 'error', error: 'Kafka unavailable: ' + e.message });
  }
}

const server = http.createServer((req, res) => {
  if (req.url !== '/webhooks/duro') return reply(res, 404, { status: 'error' });
  if (req.method !== 'POST') return reply(res, 405, { status: 'error' });
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      reply(res, 413, { status: 'error' });
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (size <= MAX_BODY) handle(req, res, Buffer.concat(chunks));
  });
});
server.keepAliveTimeout = 30000;

async function main() {
  await producer.connect();
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on port ${server.address().port}`);
  });
}

async function stop() {
  server.close();
  try {
    await producer.disconnect();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
