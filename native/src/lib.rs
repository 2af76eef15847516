//! tracesearch's compiled core: the Elasticsearch `_bulk` body of model spans.
//!
//! `bulk_body(prefix, spans, fallback)` returns, byte for byte, what the Python reference
//! `tracesearch.storage.es.document.bulk_body(prefix, spans)` returns: the same document fields in the
//! same order, the same search terms, the same JSON escaping and number formatting as orjson. It reads
//! the model spans (`tracesearch/model.py`) as they are. A span holding anything this module does not
//! know exactly as the Python path does (a subclass of str or int among the values, a non-str key, an
//! integer beyond 64 bits, nesting deeper than `MAX_DEPTH`) is handed to `fallback(span)`, the Python
//! path for one span, so such a span gives the Python path's bytes, or raises its error.

mod decode;
mod json;
mod terms;

use std::collections::{HashMap, HashSet};

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PySet, PyString};

use json::{escape_into, float_into, int_fits, int_into, iso_date_into, string_into};
use terms::Terms;

/// Why a span goes to the Python path (a Python error while reading it counts too: the Python path
/// then meets the same object and raises, or handles what this module does not).
pub struct Decline;

impl From<PyErr> for Decline {
    fn from(_: PyErr) -> Self {
        Decline
    }
}

type Built<T> = Result<T, Decline>;

/// Nesting of attribute values handled here; deeper ones go to the Python path (orjson's own limit is 254).
const MAX_DEPTH: usize = 64;
const NS_PER_MS: i128 = 1_000_000;
/// The most a body reserves from its first span's size (a huge first span must not reserve gigabytes).
const MAX_RESERVE: usize = 16 << 20;
const NS_PER_DAY: i128 = 86_400 * 1_000_000_000;
const MAX_NS: i128 = i64::MAX as i128;
const KIND_LABELS: [&str; 6] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS_LABELS: [&str; 3] = ["unset", "ok", "error"];
const CLIENT: i64 = 3;
const PRODUCER: i64 = 4;
/// `query/remote_service.py`'s REMOTE_NAME_KEYS, in its order.
const REMOTE_NAME_KEYS: [&str; 7] = [
    "server.address",
    "net.peer.name",
    "server.socket.domain",
    "net.sock.peer.name",
    "peer.hostname",
    "peer.address",
    "db.name",
];
const REMOTE_SERVICE_FIELD: &[u8] = b"zipkin:remoteServiceName";
/// `storage/es/key_sets.py`: a span names each of its key sets by id, and the first span of a body and
/// day with a set carries the set itself.
const KEY_SET_ID_PREFIX: &[u8] = b"keys:";
const KEY_SET_PREFIX: &[u8] = b"keyset:";
type KeySetId = [u8; 16];

/// An exact Python int as orjson would write it, or a decline (a subclass, or beyond 64 bits).
fn int_of(value: &Bound<'_, PyAny>) -> Built<i128> {
    if !value.is_exact_instance_of::<PyInt>() {
        return Err(Decline);
    }
    if let Ok(small) = value.extract::<i64>() {
        return Ok(small as i128);
    }
    Ok(value.extract::<u64>()? as i128)
}

fn str_of<'a>(value: &'a Bound<'_, PyAny>) -> Built<&'a str> {
    if !value.is_exact_instance_of::<PyString>() {
        return Err(Decline);
    }
    // SAFETY: the exact type was checked above.
    Ok(unsafe { value.cast_unchecked::<PyString>() }.to_str()?)
}

fn write_int(out: &mut Vec<u8>, value: i128) -> Built<()> {
    if !int_fits(value) {
        return Err(Decline);
    }
    int_into(out, value);
    Ok(())
}

/// The search terms and stored source of one attribute value, in one walk (they recurse alike):
/// `SearchTerms.add_value` and `_encode_value` of the Python path.
/// `name`: the scoped key, JSON-escaped; `raw`: the same as it is (for key sets).
fn value_into(
    name: &mut Vec<u8>,
    raw: &mut Vec<u8>,
    value: &Bound<'_, PyAny>,
    terms: &mut Terms,
    src: &mut Vec<u8>,
    depth: usize,
) -> Built<()> {
    if depth > MAX_DEPTH {
        return Err(Decline);
    }
    if value.is_exact_instance_of::<PyString>() {
        let text = str_of(value)?;
        terms.tag_eq_str(name, text);
        terms.text(text);
        string_into(src, text);
    } else if value.is_exact_instance_of::<PyBool>() {
        let raw: &[u8] = if value.is_truthy()? { b"true" } else { b"false" };
        terms.tag_eq_raw(name, raw);
        src.extend_from_slice(raw);
    } else if value.is_exact_instance_of::<PyInt>() {
        let number = int_of(value)?;
        write_int(src, number)?;
        let mut digits = Vec::with_capacity(20);
        int_into(&mut digits, number);
        terms.tag_eq_raw(name, &digits);
        terms.num(name, number as f64);
    } else if value.is_exact_instance_of::<PyFloat>() {
        let number = unsafe { value.cast_unchecked::<PyFloat>() }.value();
        let mut repr = Vec::with_capacity(24);
        json::python_float_repr(&mut repr, number);
        terms.tag_eq_raw(name, &repr);
        if number.is_finite() {
            if number.abs() < 1.7e308 {
                terms.num(name, number);
            }
            float_into(src, number);
        } else {
            let label: &[u8] = if number.is_nan() {
                b"NaN"
            } else if number > 0.0 {
                b"Infinity"
            } else {
                b"-Infinity"
            };
            src.extend_from_slice(b"{\"f\":\"");
            src.extend_from_slice(label);
            src.extend_from_slice(b"\"}");
        }
    } else if value.is_exact_instance_of::<PyBytes>() {
        let data = unsafe { value.cast_unchecked::<PyBytes>() }.as_bytes();
        let mut encoded = Vec::with_capacity(data.len().div_ceil(3) * 4);
        json::base64_into(&mut encoded, data);
        terms.tag_eq_raw(name, &encoded);
        src.extend_from_slice(b"{\"b\":\"");
        src.extend_from_slice(&encoded);
        src.extend_from_slice(b"\"}");
    } else if value.is_exact_instance_of::<PyList>() {
        src.push(b'[');
        for (i, item) in unsafe { value.cast_unchecked::<PyList>() }.iter().enumerate() {
            if i > 0 {
                src.push(b',');
            }
            value_into(name, raw, &item, terms, src, depth + 1)?;
        }
        src.push(b']');
    } else if value.is_exact_instance_of::<PyDict>() {
        src.extend_from_slice(b"{\"kv\":{");
        let (base, raw_base) = (name.len(), raw.len());
        for (i, (key, item)) in unsafe { value.cast_unchecked::<PyDict>() }.iter().enumerate() {
            let key = str_of(&key)?;
            if i > 0 {
                src.push(b',');
            }
            string_into(src, key);
            src.push(b':');
            name.push(b'.');
            escape_into(name, key);
            raw.push(b'.');
            raw.extend_from_slice(key.as_bytes());
            terms.key(name, raw);
            value_into(name, raw, &item, terms, src, depth + 1)?;
            name.truncate(base);
            raw.truncate(raw_base);
        }
        src.extend_from_slice(b"}}");
    } else if value.is_none() {
        src.extend_from_slice(b"null");
    } else {
        return Err(Decline);
    }
    Ok(())
}

/// `SearchTerms.add_attributes(scope, attributes)` and `_encode_attributes(attributes)` at once:
/// terms into `terms`, the stored map (a JSON object) into `src`.
fn attributes_into(scope: &[u8], attributes: &Bound<'_, PyAny>, terms: &mut Terms, src: &mut Vec<u8>) -> Built<()> {
    if !attributes.is_exact_instance_of::<PyDict>() {
        return Err(Decline);
    }
    let mut name = Vec::with_capacity(64);
    let mut raw = Vec::with_capacity(64);
    src.push(b'{');
    for (i, (key, value)) in unsafe { attributes.cast_unchecked::<PyDict>() }.iter().enumerate() {
        let key = str_of(&key)?;
        if i > 0 {
            src.push(b',');
        }
        string_into(src, key);
        src.push(b':');
        name.clear();
        name.extend_from_slice(scope);
        name.push(b'.');
        escape_into(&mut name, key);
        raw.clear();
        raw.extend_from_slice(scope);
        raw.push(b'.');
        raw.extend_from_slice(key.as_bytes());
        terms.key(&name, &raw);
        value_into(&mut name, &mut raw, &value, terms, src, 1)?;
    }
    src.push(b'}');
    terms.flush_keys();
    Ok(())
}

fn is_empty_dict(value: &Bound<'_, PyAny>) -> Built<bool> {
    Ok(!value.is_truthy()?)
}

/// Plain JSON of what `ZipkinOrigin.to_json()` returns (str, int, bool, float, None, list, dict),
/// as orjson writes it.
fn plain_into(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> Built<()> {
    if depth > MAX_DEPTH {
        return Err(Decline);
    }
    if value.is_exact_instance_of::<PyString>() {
        string_into(out, str_of(value)?);
    } else if value.is_exact_instance_of::<PyBool>() {
        out.extend_from_slice(if value.is_truthy()? { b"true" } else { b"false" });
    } else if value.is_exact_instance_of::<PyInt>() {
        write_int(out, int_of(value)?)?;
    } else if value.is_exact_instance_of::<PyFloat>() {
        let number = unsafe { value.cast_unchecked::<PyFloat>() }.value();
        if number.is_finite() {
            float_into(out, number);
        } else {
            out.extend_from_slice(b"null");
        }
    } else if value.is_none() {
        out.extend_from_slice(b"null");
    } else if value.is_exact_instance_of::<PyList>() {
        out.push(b'[');
        for (i, item) in unsafe { value.cast_unchecked::<PyList>() }.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            plain_into(&item, out, depth + 1)?;
        }
        out.push(b']');
    } else if value.is_exact_instance_of::<PyDict>() {
        out.push(b'{');
        for (i, (key, item)) in unsafe { value.cast_unchecked::<PyDict>() }.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string_into(out, str_of(&key)?);
            out.push(b':');
            plain_into(&item, out, depth + 1)?;
        }
        out.push(b'}');
    } else {
        return Err(Decline);
    }
    Ok(())
}

/// What a resource gives each of its spans' documents, computed once per resource and call.
struct ResourceFields {
    _keep: Py<PyAny>, // the cache is keyed by address: the object must outlive the call's cache
    terms: Terms,
    source: Vec<u8>,
    has_attributes: bool,
    service: Vec<u8>, // escaped
}

struct Builder<'py> {
    py: Python<'py>,
    prefix: String,
    heads: HashMap<i64, Vec<u8>>,
    resources: HashMap<usize, ResourceFields>,
    terms: Terms,
    source: Vec<u8>,
    scratch: Vec<u8>,
    // The (day, key set id) pairs the body carries so far: shared with the Python path as `carried`,
    // mirrored in `carried_here` so most lookups stay out of Python.
    carried: Bound<'py, PySet>,
    carried_here: HashSet<(i64, KeySetId)>,
    ids: HashMap<Vec<u8>, KeySetId>,
}

/// `key_sets.key_set_id`: 16 hex digits of BLAKE2b (8-byte digest) over the set's UTF-8.
fn key_set_id(joined: &[u8]) -> KeySetId {
    let mut hasher = Blake2bVar::new(8).expect("8 is a valid BLAKE2b digest size");
    hasher.update(joined);
    let mut digest = [0u8; 8];
    hasher.finalize_variable(&mut digest).expect("the buffer has the digest's size");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 16];
    for (i, byte) in digest.iter().enumerate() {
        id[2 * i] = HEX[(byte >> 4) as usize];
        id[2 * i + 1] = HEX[(byte & 15) as usize];
    }
    id
}

impl<'py> Builder<'py> {
    fn resource(&mut self, resource: &Bound<'py, PyAny>) -> Built<usize> {
        let key = resource.as_ptr() as usize;
        if !self.resources.contains_key(&key) {
            let py = self.py;
            let attributes = resource.getattr(intern!(py, "attributes"))?;
            let mut terms = Terms::default();
            let mut source = Vec::new();
            attributes_into(b"resource", &attributes, &mut terms, &mut source)?;
            let mut service = Vec::new();
            escape_into(&mut service, str_of(&resource.getattr(intern!(py, "service_name"))?)?);
            let has_attributes = !is_empty_dict(&attributes)?;
            let fields = ResourceFields { _keep: resource.clone().unbind(), terms, source, has_attributes, service };
            self.resources.insert(key, fields);
        }
        Ok(key)
    }

    fn key_set_id(&mut self, joined: &[u8]) -> KeySetId {
        if let Some(id) = self.ids.get(joined) {
            return *id;
        }
        let id = key_set_id(joined);
        self.ids.insert(joined.to_vec(), id);
        id
    }

    /// Whether this span carries the set: the first of the body and day to have it does.
    fn carries(&mut self, day: i64, id: &KeySetId) -> Built<bool> {
        if !self.carried_here.insert((day, *id)) {
            return Ok(false);
        }
        let id_text = std::str::from_utf8(id).map_err(|_| Decline)?;
        let pair = (day, id_text).into_pyobject(self.py)?;
        if self.carried.contains(&pair)? {
            return Ok(false);
        }
        self.carried.add(pair)?;
        Ok(true)
    }

    /// `key_sets.key_set_terms`: after the span's other tags.
    fn key_sets_into(&mut self, out: &mut Vec<u8>, start_ns: i128, terms: &Terms) -> Built<()> {
        let day = (start_ns.clamp(0, MAX_NS) / NS_PER_DAY) as i64;
        let mut first = terms.tags.is_empty();
        for (raw, joined) in terms.key_sets_raw.iter().zip(terms.key_sets.iter()) {
            let id = self.key_set_id(raw);
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(KEY_SET_ID_PREFIX);
            out.extend_from_slice(&id);
            out.push(b'"');
            if self.carries(day, &id)? {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(KEY_SET_PREFIX);
                out.extend_from_slice(&id);
                out.push(b':');
                out.extend_from_slice(joined);
                out.push(b'"');
            }
        }
        Ok(())
    }

    /// `{"create":{"_index":"<prefix>-span-<day>","_id":"` for the span's day.
    fn head(&mut self, start_ns: i128) -> &[u8] {
        let day = (start_ns.clamp(0, MAX_NS) / NS_PER_DAY) as i64;
        let prefix = &self.prefix;
        self.heads.entry(day).or_insert_with(|| {
            let mut head = b"{\"create\":{\"_index\":\"".to_vec();
            escape_into(&mut head, prefix);
            head.extend_from_slice(b"-span-");
            iso_date_into(&mut head, day);
            head.extend_from_slice(b"\",\"_id\":\"");
            head
        })
    }

    /// The span's two NDJSON lines appended to `out`, or a decline (then `out` is as it was).
    fn span_into(&mut self, span: &Bound<'py, PyAny>, out: &mut Vec<u8>) -> Built<()> {
        let py = self.py;
        let trace_id_obj = span.getattr(intern!(py, "trace_id"))?;
        let trace_id = str_of(&trace_id_obj)?;
        let span_id_obj = span.getattr(intern!(py, "span_id"))?;
        let span_id = str_of(&span_id_obj)?;
        let name_obj = span.getattr(intern!(py, "name"))?;
        let name = str_of(&name_obj)?;
        let start_ns = int_of(&span.getattr(intern!(py, "start_ns"))?)?;
        let end_ns = int_of(&span.getattr(intern!(py, "end_ns"))?)?;
        let kind: i64 = span.getattr(intern!(py, "kind"))?.extract()?;
        let status: i64 = span.getattr(intern!(py, "status_code"))?.extract()?;
        if !(0..KIND_LABELS.len() as i64).contains(&kind) || !(0..STATUS_LABELS.len() as i64).contains(&status) {
            return Err(Decline);
        }
        let parent_obj = span.getattr(intern!(py, "parent_span_id"))?;
        let parent = str_of(&parent_obj)?;
        let message_obj = span.getattr(intern!(py, "status_message"))?;
        let message = str_of(&message_obj)?;
        let trace_state_obj = span.getattr(intern!(py, "trace_state"))?;
        let trace_state = str_of(&trace_state_obj)?;
        let attributes = span.getattr(intern!(py, "attributes"))?;
        let resource_key = self.resource(&span.getattr(intern!(py, "resource"))?)?;
        let scope = span.getattr(intern!(py, "scope"))?;
        let zipkin = span.getattr(intern!(py, "zipkin"))?;

        // Search terms in the Python path's order, and the stored source alongside.
        let mut terms = std::mem::take(&mut self.terms);
        let mut source = std::mem::take(&mut self.source);
        let mut scratch = std::mem::take(&mut self.scratch);
        terms.clear();
        source.clear();
        let result = (|| -> Built<()> {
            terms.text(name);
            source.extend_from_slice(b"{\"e\":");
            write_int(&mut source, end_ns)?;
            source.extend_from_slice(b",\"a\":");
            attributes_into(b"span", &attributes, &mut terms, &mut source)?;
            let resource = &self.resources[&resource_key];
            terms.extend(&resource.terms);
            if resource.has_attributes {
                source.extend_from_slice(b",\"r\":");
                source.extend_from_slice(&resource.source);
            }
            self.scope_into(&scope, trace_state, &mut terms, &mut source, &mut scratch)?;
            self.events_into(span, &mut terms, &mut source)?;
            self.links_into(span, &mut terms, &mut source)?;
            if !message.is_empty() {
                terms.text(message);
            }
            self.remote_service_into(&zipkin, &attributes, kind, &mut terms)?;
            self.source_rest_into(span, trace_state, &zipkin, &mut source)?;
            source.push(b'}');

            let start = out.len();
            let written = self.lines_into(
                out, start_ns, end_ns, trace_id, span_id, name, kind, status, message, parent, resource_key, &terms, &source,
            );
            if written.is_err() {
                out.truncate(start);
            }
            written
        })();
        self.terms = terms;
        self.source = source;
        self.scratch = scratch;
        result
    }

    fn scope_into(
        &self,
        scope: &Bound<'py, PyAny>,
        trace_state: &str,
        terms: &mut Terms,
        source: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Built<()> {
        let py = self.py;
        let name_obj = scope.getattr(intern!(py, "name"))?;
        let scope_name = str_of(&name_obj)?;
        let version_obj = scope.getattr(intern!(py, "version"))?;
        let version = str_of(&version_obj)?;
        let attributes = scope.getattr(intern!(py, "attributes"))?;
        if !scope_name.is_empty() {
            terms.tag_prefixed(b"instrumentation:name=", scope_name);
        }
        if !version.is_empty() {
            terms.tag_prefixed(b"instrumentation:version=", version);
        }
        if !trace_state.is_empty() {
            terms.tag_prefixed(b"span:traceState=", trace_state);
        }
        scratch.clear();
        attributes_into(b"instrumentation", &attributes, terms, scratch)?;
        if !scope_name.is_empty() || !version.is_empty() || !is_empty_dict(&attributes)? {
            source.extend_from_slice(b",\"sc\":[");
            string_into(source, scope_name);
            source.push(b',');
            string_into(source, version);
            source.push(b',');
            source.extend_from_slice(scratch);
            source.push(b']');
        }
        Ok(())
    }

    fn events_into(&self, span: &Bound<'py, PyAny>, terms: &mut Terms, source: &mut Vec<u8>) -> Built<()> {
        let py = self.py;
        let events = span.getattr(intern!(py, "events"))?;
        if !events.is_exact_instance_of::<PyList>() {
            return Err(Decline);
        }
        let events = unsafe { events.cast_unchecked::<PyList>() };
        if events.is_empty() {
            return Ok(());
        }
        source.extend_from_slice(b",\"ev\":[");
        for (i, event) in events.iter().enumerate() {
            let time_ns = int_of(&event.getattr(intern!(py, "time_ns"))?)?;
            let name_obj = event.getattr(intern!(py, "name"))?;
            let name = str_of(&name_obj)?;
            let dropped = int_of(&event.getattr(intern!(py, "dropped_attributes_count"))?)?;
            terms.tag_prefixed(b"event:name=", name);
            terms.text(name);
            if i > 0 {
                source.push(b',');
            }
            source.push(b'[');
            write_int(source, time_ns)?;
            source.push(b',');
            string_into(source, name);
            source.push(b',');
            attributes_into(b"event", &event.getattr(intern!(py, "attributes"))?, terms, source)?;
            source.push(b',');
            write_int(source, dropped)?;
            source.push(b']');
        }
        source.push(b']');
        Ok(())
    }

    fn links_into(&self, span: &Bound<'py, PyAny>, terms: &mut Terms, source: &mut Vec<u8>) -> Built<()> {
        let py = self.py;
        let links = span.getattr(intern!(py, "links"))?;
        if !links.is_exact_instance_of::<PyList>() {
            return Err(Decline);
        }
        let links = unsafe { links.cast_unchecked::<PyList>() };
        if links.is_empty() {
            return Ok(());
        }
        source.extend_from_slice(b",\"ln\":[");
        for (i, link) in links.iter().enumerate() {
            if i > 0 {
                source.push(b',');
            }
            source.push(b'[');
            for field in [intern!(py, "trace_id"), intern!(py, "span_id"), intern!(py, "trace_state")] {
                string_into(source, str_of(&link.getattr(field)?)?);
                source.push(b',');
            }
            attributes_into(b"link", &link.getattr(intern!(py, "attributes"))?, terms, source)?;
            source.push(b',');
            write_int(source, int_of(&link.getattr(intern!(py, "dropped_attributes_count"))?)?)?;
            source.push(b',');
            write_int(source, int_of(&link.getattr(intern!(py, "flags"))?)?)?;
            source.push(b']');
        }
        source.push(b']');
        Ok(())
    }

    /// `remote_service_name(span)` of `query/remote_service.py`, as the two tags it adds.
    fn remote_service_into(
        &self,
        zipkin: &Bound<'py, PyAny>,
        attributes: &Bound<'py, PyAny>,
        kind: i64,
        terms: &mut Terms,
    ) -> Built<()> {
        let py = self.py;
        let attributes = unsafe { attributes.cast_unchecked::<PyDict>() }; // checked by attributes_into
        let found: Option<Bound<'py, PyAny>> = if !zipkin.is_none() {
            let endpoint = zipkin.getattr(intern!(py, "remote_endpoint"))?;
            if !endpoint.is_exact_instance_of::<PyDict>() {
                return Err(Decline);
            }
            unsafe { endpoint.cast_unchecked::<PyDict>() }.get_item(intern!(py, "serviceName"))?
        } else {
            let mut found = attributes.get_item(intern!(py, "peer.service"))?.filter(|v| v.is_truthy().unwrap_or(false));
            if found.as_ref().is_some_and(|v| !v.is_instance_of::<PyString>()) {
                found = None;
            }
            if found.is_none() && (kind == CLIENT || kind == PRODUCER) {
                for key in REMOTE_NAME_KEYS {
                    if let Some(candidate) = attributes.get_item(key)? {
                        if candidate.is_instance_of::<PyString>() && candidate.is_truthy()? {
                            found = Some(candidate);
                            break;
                        }
                    }
                }
            }
            found
        };
        if let Some(remote) = found {
            if remote.is_instance_of::<PyString>() {
                let remote = str_of(&remote)?;
                if !remote.is_empty() {
                    terms.tag_raw(REMOTE_SERVICE_FIELD);
                    let mut field = REMOTE_SERVICE_FIELD.to_vec();
                    field.push(b'=');
                    terms.tag_prefixed(&field, remote);
                }
            }
        }
        Ok(())
    }

    /// The source's fields after the events and links: `ts`, `fl`, `d`, `z`.
    fn source_rest_into(
        &self,
        span: &Bound<'py, PyAny>,
        trace_state: &str,
        zipkin: &Bound<'py, PyAny>,
        source: &mut Vec<u8>,
    ) -> Built<()> {
        let py = self.py;
        if !trace_state.is_empty() {
            source.extend_from_slice(b",\"ts\":");
            string_into(source, trace_state);
        }
        let flags = int_of(&span.getattr(intern!(py, "flags"))?)?;
        if flags != 0 {
            source.extend_from_slice(b",\"fl\":");
            write_int(source, flags)?;
        }
        let dropped = [
            int_of(&span.getattr(intern!(py, "dropped_attributes_count"))?)?,
            int_of(&span.getattr(intern!(py, "dropped_events_count"))?)?,
            int_of(&span.getattr(intern!(py, "dropped_links_count"))?)?,
        ];
        if dropped.iter().any(|d| *d != 0) {
            source.extend_from_slice(b",\"d\":[");
            for (i, count) in dropped.into_iter().enumerate() {
                if i > 0 {
                    source.push(b',');
                }
                write_int(source, count)?;
            }
            source.push(b']');
        }
        if !zipkin.is_none() {
            source.extend_from_slice(b",\"z\":");
            plain_into(&zipkin.call_method0(intern!(py, "to_json"))?, source, 0)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn lines_into(
        &mut self,
        out: &mut Vec<u8>,
        start_ns: i128,
        end_ns: i128,
        trace_id: &str,
        span_id: &str,
        name: &str,
        kind: i64,
        status: i64,
        message: &str,
        parent: &str,
        resource_key: usize,
        terms: &Terms,
        source: &[u8],
    ) -> Built<()> {
        let duration = end_ns - start_ns;
        if !int_fits(duration) {
            return Err(Decline);
        }
        out.extend_from_slice(self.head(start_ns));
        escape_into(out, trace_id);
        escape_into(out, span_id);
        int_into(out, kind as i128);
        out.extend_from_slice(b"\"}}\n{\"@timestamp\":");
        write_int(out, start_ns.div_euclid(NS_PER_MS))?;
        out.extend_from_slice(b",\"start_ns\":");
        write_int(out, start_ns)?;
        out.extend_from_slice(b",\"duration_ns\":");
        int_into(out, duration);
        out.extend_from_slice(b",\"trace\":{\"id\":");
        string_into(out, trace_id);
        out.extend_from_slice(b"},\"span\":{\"id\":");
        string_into(out, span_id);
        out.extend_from_slice(b",\"name\":");
        string_into(out, name);
        out.extend_from_slice(b",\"kind\":\"");
        out.extend_from_slice(KIND_LABELS[kind as usize].as_bytes());
        out.extend_from_slice(b"\"},\"service\":{\"name\":\"");
        out.extend_from_slice(&self.resources[&resource_key].service);
        out.extend_from_slice(b"\"},\"status\":{\"code\":\"");
        out.extend_from_slice(STATUS_LABELS[status as usize].as_bytes());
        out.push(b'"');
        if !message.is_empty() {
            out.extend_from_slice(b",\"message\":");
            string_into(out, message);
        }
        out.extend_from_slice(b"},\"tags\":[");
        out.extend_from_slice(&terms.tags);
        self.key_sets_into(out, start_ns, terms)?;
        out.extend_from_slice(b"],\"text\":\"");
        out.extend_from_slice(&terms.texts);
        out.extend_from_slice(b"\",\"source\":");
        out.extend_from_slice(source);
        if !terms.nums.is_empty() {
            out.extend_from_slice(b",\"tags_num\":[");
            out.extend_from_slice(&terms.nums);
            out.push(b']');
        }
        if !parent.is_empty() {
            out.extend_from_slice(b",\"parent\":{\"id\":");
            string_into(out, parent);
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// The `_bulk` body that creates `spans` in their daily indices `<prefix>-span-<day>`: what
/// `document.bulk_body(prefix, spans)` returns. `fallback(span)` gives a span's two lines the Python
/// way, for spans this module declines; `carried` is the set of (day, key set id) pairs the body
/// carries, which both update.
#[pyfunction]
fn bulk_body<'py>(
    py: Python<'py>,
    prefix: &str,
    spans: &Bound<'py, PyAny>,
    fallback: &Bound<'py, PyAny>,
    carried: &Bound<'py, PySet>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut builder = Builder {
        py,
        prefix: prefix.to_owned(),
        heads: HashMap::new(),
        resources: HashMap::new(),
        terms: Terms::default(),
        source: Vec::with_capacity(2048),
        scratch: Vec::with_capacity(256),
        carried: carried.clone(),
        carried_here: HashSet::new(),
        ids: HashMap::new(),
    };
    let count = spans.len().unwrap_or(0);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    for (i, span) in spans.try_iter()?.enumerate() {
        let span = span?;
        if i == 1 {
            // Spans of one batch are much alike: room for the rest at once, not a copy per doubling.
            out.reserve((out.len() * count.saturating_sub(1) * 5 / 4).min(MAX_RESERVE));
        }
        let start = out.len();
        if builder.span_into(&span, &mut out).is_err() {
            out.truncate(start);
            let lines = fallback.call1((&span,))?;
            out.extend_from_slice(lines.cast::<PyBytes>()?.as_bytes());
        }
    }
    Ok(PyBytes::new(py, &out))
}

/// Decodes an OTLP/protobuf `ExportTraceServiceRequest` into model spans (see `decode.rs`): spans made
/// with `span_cls`, `event_cls`, `link_cls`, kinds and status codes looked up in `kinds` / `codes`,
/// handed to `make_resource`, `make_scope` and `admit` in the Python decoder's order. False: the body
/// is declined (the caller discards what the steps did and decodes it in Python).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn decode_export_request<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyBytes>,
    span_cls: Bound<'py, PyAny>,
    event_cls: Bound<'py, PyAny>,
    link_cls: Bound<'py, PyAny>,
    kinds: Bound<'py, pyo3::types::PyTuple>,
    codes: Bound<'py, pyo3::types::PyTuple>,
    make_resource: Bound<'py, PyAny>,
    make_scope: Bound<'py, PyAny>,
    admit: Bound<'py, PyAny>,
) -> PyResult<bool> {
    let makers = decode::Makers { span: span_cls, event: event_cls, link: link_cls, kinds, codes };
    let steps = decode::Steps { make_resource, make_scope, admit };
    // SAFETY-free borrow: `body` outlives the call, and bytes objects are immutable.
    let data: &'py [u8] = unsafe { std::slice::from_raw_parts(body.as_bytes().as_ptr(), body.as_bytes().len()) };
    decode::decode(py, data, makers, &steps)
}

#[pymodule]
fn tracesearch_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(bulk_body, module)?)?;
    module.add_function(wrap_pyfunction!(decode_export_request, module)?)?;
    Ok(())
}
