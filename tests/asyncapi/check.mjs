// Checks schemas/asyncapi.yaml: parses it with the AsyncAPI parser (resolving its file
// $refs), fails on any diagnostic of severity error, prints the channels and operations,
// asserts the three kinds of topic and their message schemas, then compiles every JSON
// Schema it uses with ajv (the referenced schema files, and the header and key schemas)
// and validates the message examples against them.
//
// Usage: node tests/asyncapi/check.mjs [path/to/asyncapi.yaml]
// Exit status: 0 when everything holds, 1 otherwise.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Parser, fromFile, DiagnosticSeverity } from '@asyncapi/parser';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
const docPath = path.resolve(process.argv[2] ?? path.join(here, '..', '..', 'schemas', 'asyncapi.yaml'));
const docDir = path.dirname(docPath);

const WEBHOOK_ID = 'urn:duro-kafka-bridge:schema:duro-webhook';
const ENRICHED_ID = 'urn:duro-kafka-bridge:schema:enriched-event';
const DLQ_CLASSES = ['invalid-payload', 'no-topic', 'produce-rejected', 'resource-error'];

let failures = 0;
function fail(msg) {
  failures++;
  console.error(`FAIL: ${msg}`);
}
function check(cond, msg) {
  if (!cond) fail(msg);
  return !!cond;
}

const severityName = (s) =>
  ({
    [DiagnosticSeverity.Error]: 'error',
    [DiagnosticSeverity.Warning]: 'warning',
    [DiagnosticSeverity.Information]: 'info',
    [DiagnosticSeverity.Hint]: 'hint',
  })[s] ?? String(s);

// Drops the parser's own annotations (x-parser-*) so that ajv sees plain JSON Schema.
function plain(value) {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (!k.startsWith('x-parser-')) out[k] = plain(v);
    return out;
  }
  return value;
}

// ---- 1. Parse with the real parser -------------------------------------------------

// The JSON Schemas name one another by $id (urn:duro-kafka-bridge:schema:<name>, as JSON
// Schema 2020-12 allows); a generic $ref resolver cannot fetch a URN, so this one maps
// such an id to <name>.schema.json next to the AsyncAPI document.
const URN_PREFIX = 'urn:duro-kafka-bridge:schema:';
const urnResolver = {
  schema: 'urn',
  read(uri) {
    const id = uri.toString().split('#')[0];
    if (!id.startsWith(URN_PREFIX)) throw new Error(`unknown URN ${id}`);
    return readFileSync(path.join(docDir, `${id.slice(URN_PREFIX.length)}.schema.json`), 'utf8');
  },
};

console.log(`AsyncAPI document: ${docPath}`);
const parser = new Parser({ __unstable: { resolver: { resolvers: [urnResolver] } } });
let document;
let diagnostics = [];
try {
  ({ document, diagnostics } = await fromFile(parser, docPath).parse());
} catch (err) {
  fail(`cannot parse: ${err?.message ?? err}`);
}
for (const d of diagnostics) {
  const where = d.path && d.path.length ? ` at ${d.path.join('.')}` : '';
  const line = `${severityName(d.severity)} [${d.code}]${where}: ${d.message}`;
  if (d.severity === DiagnosticSeverity.Error) fail(line);
  else console.log(`  ${line}`);
}
if (!document) {
  fail('the parser produced no document');
  console.error(`\n${failures} failure(s)`);
  process.exit(1);
}
console.log(`parsed: AsyncAPI ${document.version()}, "${document.info().title()}" ${document.info().version()}`);

// ---- 2. What it holds ----------------------------------------------------------------

const payloadName = (m) => {
  const p = m.payload();
  if (!p) return '(none)';
  const j = p.json();
  return j.$id ?? j.title ?? (j.description ? `inline: ${j.description.split('\n')[0].slice(0, 50)}` : 'inline');
};

console.log('\nchannels:');
for (const ch of document.channels()) {
  const params = ch.parameters().all().map((p) => `{${p.id()}}`);
  console.log(`  ${ch.id()}: ${ch.address()}${params.length ? `  parameters ${params.join(' ')}` : ''}`);
  for (const m of ch.messages()) console.log(`    message ${m.id()}: payload ${payloadName(m)}`);
}
console.log('\noperations:');
for (const op of document.operations()) {
  const chs = op.channels().all().map((c) => c.address());
  const msgs = op.messages().all().map((m) => m.id());
  console.log(`  ${op.id()}: ${op.action()} ${chs.join(', ')} [${msgs.join(', ')}]`);
}
console.log('');

// ---- 3. Assertions on the three kinds of topic ------------------------------------

const byAddress = new Map(document.channels().all().map((c) => [c.address(), c]));
const raw = byAddress.get('duro.webhooks.raw');
const events = byAddress.get('duro.events.{event}');
const dlq = byAddress.get('duro.webhooks.dlq');

function messageWithPayloadId(ch, id) {
  return ch?.messages().all().find((m) => m.payload()?.json().$id === id);
}
function kafkaKey(m) {
  const b = m.bindings().get('kafka');
  return b?.value()?.key;
}

if (check(raw, 'no channel with address duro.webhooks.raw')) {
  const m = messageWithPayloadId(raw, WEBHOOK_ID);
  check(m, `raw channel: no message whose payload is ${WEBHOOK_ID} (./duro-webhook.schema.json)`);
  const invalid = raw.messages().all().find((x) => x.headers()?.json() && JSON.stringify(x.headers().json()).includes('"duro-invalid"'));
  check(invalid, 'raw channel: no message describing the duro-invalid header');
  check(raw.bindings().get('kafka'), 'raw channel: no kafka binding');
}
if (check(events, 'no channel with address duro.events.{event}')) {
  check(events.parameters().get('event'), 'events channel: no "event" parameter');
  check(messageWithPayloadId(events, ENRICHED_ID), `events channel: no message whose payload is ${ENRICHED_ID} (./enriched-event.schema.json)`);
  const h = events.messages().all()[0]?.headers()?.json();
  for (const name of ['idempotency-key', 'duro-event', 'duro-event-id', 'content-type'])
    check(h?.properties?.[name], `events channel: header ${name} not described`);
}
if (check(dlq, 'no channel with address duro.webhooks.dlq')) {
  const m = dlq.messages().all()[0];
  if (check(m, 'dlq channel: no message')) {
    check(m.payload(), 'dlq channel: message has no payload schema');
    const h = JSON.stringify(m.headers()?.json() ?? {});
    for (const name of ['error-class', 'error-message', 'attempts', 'source-topic', 'source-partition', 'source-offset'])
      check(h.includes(`"${name}"`), `dlq channel: header ${name} not described`);
    for (const cls of DLQ_CLASSES) check(h.includes(`"${cls}"`), `dlq channel: error-class ${cls} missing from the enum`);
  }
}
for (const ch of document.channels()) {
  for (const m of ch.messages()) {
    check(m.payload(), `${ch.address()} ${m.id()}: no payload schema`);
    check(m.headers()?.json(), `${ch.address()} ${m.id()}: no headers schema`);
    check(kafkaKey(m), `${ch.address()} ${m.id()}: no kafka key schema`);
  }
}
const ops = document.operations().all();
const hasOp = (action, address) => ops.some((o) => o.action() === action && o.channels().all().some((c) => c.address() === address));
check(hasOp('send', 'duro.webhooks.raw'), 'no send operation on the raw topic (duro-bridge)');
check(hasOp('receive', 'duro.webhooks.raw'), 'no receive operation on the raw topic (duro-enricher)');
check(hasOp('send', 'duro.events.{event}'), 'no send operation on the output topics (duro-enricher)');
check(hasOp('send', 'duro.webhooks.dlq'), 'no send operation on the DLQ (duro-enricher)');

// ---- 4. Compile the JSON Schemas with ajv ------------------------------------------

// The schema files the document refers to, compiled as the draft their $schema names.
// Unknown keywords and formats are errors (strictSchema); a property that is required
// without being described in the same subschema is fine (the if/then idiom).
const ajvOptions = { allErrors: true, strictSchema: true, strictTypes: false, strictRequired: false };
const ajv2020 = addFormats(new Ajv2020(ajvOptions));
const ajv07 = addFormats(new Ajv(ajvOptions));
const docText = readFileSync(docPath, 'utf8');
const fileRefs = [...new Set([...docText.matchAll(/\$ref:\s*['"]?(\.{1,2}\/[^'"#\s]+)/g)].map((m) => m[1]))];
check(fileRefs.length >= 2, `expected file $refs to the JSON Schemas, found ${fileRefs.length}`);
const files = [];
for (const ref of fileRefs) {
  const file = path.resolve(docDir, ref);
  try {
    const schema = JSON.parse(readFileSync(file, 'utf8'));
    const draft07 = /draft-07/.test(schema.$schema ?? '');
    (draft07 ? ajv07 : ajv2020).addSchema(schema, schema.$id ?? file);
    files.push({ ref, file, schema, ajv: draft07 ? ajv07 : ajv2020, key: schema.$id ?? file });
  } catch (err) {
    fail(`${ref}: ${err.message}`);
  }
}
for (const f of files) {
  try {
    const validate = f.ajv.getSchema(f.key) ?? f.ajv.compile(f.schema);
    console.log(`compiled ${f.ref} (${f.schema.$schema ?? 'no $schema'})`);
    for (const [i, ex] of (f.schema.examples ?? []).entries()) {
      if (!validate(ex)) fail(`${f.ref}: examples[${i}] does not validate: ${f.ajv.errorsText(validate.errors)}`);
    }
  } catch (err) {
    fail(`${f.ref} does not compile: ${err.message}`);
  }
}

// Headers and keys are inline AsyncAPI schemas (a superset of draft-07): compile them
// after resolution, and check each message's examples against headers and payload.
for (const ch of document.channels()) {
  for (const m of ch.messages()) {
    const where = `${ch.address()} ${m.id()}`;
    const compile = (what, schema) => {
      if (!schema) return null;
      try {
        return ajv07.compile(plain(schema));
      } catch (err) {
        fail(`${where}: ${what} schema does not compile: ${err.message}`);
        return null;
      }
    };
    const headers = compile('headers', m.headers()?.json());
    const key = compile('kafka key', kafkaKey(m));
    const pj = m.payload()?.json();
    const fileSchema = pj?.$id ? files.find((f) => f.key === pj.$id) : null;
    let payload = null;
    try {
      payload = fileSchema ? fileSchema.ajv.getSchema(fileSchema.key) : compile('payload', pj);
    } catch {
      payload = null; // already reported when the file was compiled
    }
    if (headers && key) console.log(`compiled ${where}: headers, kafka key${fileSchema ? '' : ', payload'}`);
    const examples = m.examples().all();
    check(examples.length > 0, `${where}: no example`);
    for (const ex of examples) {
      const name = `${where} example ${ex.name() ?? '?'}`;
      if (headers && ex.hasHeaders() && !headers(ex.headers())) fail(`${name}: headers: ${ajv07.errorsText(headers.errors)}`);
      if (payload && ex.hasPayload() && !payload(ex.payload())) fail(`${name}: payload: ${ajv07.errorsText(payload.errors)}`);
    }
  }
}

// The header schemas must tell valid raw records from captured invalid ones.
{
  const rawValid = raw?.messages().all().find((m) => m.payload()?.json().$id === WEBHOOK_ID);
  const compiled = (m) => {
    try {
      return ajv07.compile(plain(m.headers().json()));
    } catch {
      return null; // already reported
    }
  };
  const v1 = rawValid && compiled(rawValid);
  if (v1) {
    const v = v1;
    const base = { 'duro-event': 'ITEM_UPDATE', 'duro-event-id': 'evt_1', 'duro-signature': `sha256=${'a'.repeat(64)}`, 'received-at': '2024-12-20T10:30:00.120Z', 'content-type': 'application/json' };
    check(v(base), 'raw headers: a plain valid record is refused');
    check(!v({ ...base, 'duro-invalid': 'not JSON' }), 'raw headers of a valid record accept duro-invalid');
    check(!v({ ...base, 'duro-signature': 'sha256=xyz' }), 'raw headers accept a malformed duro-signature');
    check(!v({ ...base, 'received-at': '2024-12-20T10:30:00Z' }), 'raw headers accept received-at without milliseconds');
  }
  const dlqMsg = dlq?.messages().all()[0];
  const v2 = dlqMsg && compiled(dlqMsg);
  if (v2) {
    const v = v2;
    const base = { 'error-class': 'no-topic', 'error-message': 'm', attempts: '1', 'source-topic': 'duro.webhooks.raw', 'source-partition': '0', 'source-offset': '7' };
    check(v(base), 'dlq headers: a plain dead letter is refused');
    check(!v({ ...base, 'error-class': 'other' }), 'dlq headers accept an unknown error-class');
    check(!v({ ...base, 'source-offset': '-1' }), 'dlq headers accept a negative source-offset');
  }
}

if (failures) {
  console.error(`\n${failures} failure(s)`);
  process.exit(1);
}
console.log(`\nOK: ${document.channels().length} channels, ${document.operations().length} operations, ${files.length} schema files`);
