//! OTLP/protobuf `ExportTraceServiceRequest` into the model's Python objects, as
//! `tracesearch/codecs/otlp_proto.py` maps the upb messages (before admission, which stays in Python).
//!
//! Only the plain encoding is handled here: a body with anything else (a wrong wire type on a known
//! field, a singular message field sent twice, groups, invalid UTF-8, deep nesting, the Zipkin origin
//! attribute, a truncated message) is declined (`None`), and the Python decoder decodes it or raises its
//! error, so both paths agree on every body.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

type Parsed<T> = Option<T>;

/// Nesting of AnyValue arrays and kvlists handled here (upb's own limit is 100 messages deep).
const MAX_VALUE_DEPTH: usize = 32;
const ZIPKIN_ORIGIN_ATTRIBUTE: &str = "tracesearch.zipkin_origin";

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Parsed<u64> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return None; // more than 64 bits
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn key(&mut self) -> Parsed<(u64, u8)> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return None;
        }
        Some((field, (key & 7) as u8))
    }

    fn fixed64(&mut self) -> Parsed<u64> {
        let bytes = self.buf.get(self.pos..self.pos + 8)?;
        self.pos += 8;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }

    fn fixed32(&mut self) -> Parsed<u32> {
        let bytes = self.buf.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    fn bytes(&mut self) -> Parsed<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let bytes = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    fn string(&mut self) -> Parsed<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// An unknown field, skipped as upb keeps it aside (groups are declined).
    fn skip(&mut self, wire: u8) -> Parsed<()> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.fixed64().map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            FIXED32 => self.fixed32().map(|_| ()),
            _ => None,
        }
    }
}

/// The classes and callables the decoded objects are made with (`otlp_native.py` passes them).
pub struct Makers<'py> {
    pub span: Bound<'py, PyAny>,
    pub event: Bound<'py, PyAny>,
    pub link: Bound<'py, PyAny>,
    pub kinds: Bound<'py, PyTuple>,
    pub codes: Bound<'py, PyTuple>,
}

struct Decoder<'py> {
    py: Python<'py>,
    makers: Makers<'py>,
    keys: std::collections::HashMap<&'py [u8], Bound<'py, PyString>>,
    error: Option<PyErr>, // raised by a Python step: the decoding stops and raises it
}

fn hex<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(HEX[(b >> 4) as usize] as char);
        text.push(HEX[(b & 15) as usize] as char);
    }
    PyString::new(py, &text)
}

impl<'py> Decoder<'py> {
    /// A key string, made once per request (keys repeat from span to span).
    fn key(&mut self, raw: &'py [u8]) -> Parsed<Bound<'py, PyString>> {
        if let Some(found) = self.keys.get(raw) {
            return Some(found.clone());
        }
        let text = std::str::from_utf8(raw).ok()?;
        let key = PyString::new(self.py, text);
        self.keys.insert(raw, key.clone());
        Some(key)
    }

    /// `attributes_from_pb`: repeated KeyValue into a dict, the last of a duplicate key winning.
    fn attributes(&mut self, fields: &[&'py [u8]]) -> Parsed<Bound<'py, PyDict>> {
        let out = PyDict::new(self.py);
        for raw in fields {
            let (key, value) = self.key_value(raw, 0)?;
            out.set_item(key, value).ok()?;
        }
        Some(out)
    }

    fn key_value(&mut self, raw: &'py [u8], depth: usize) -> Parsed<(Bound<'py, PyString>, Bound<'py, PyAny>)> {
        let mut reader = Reader::new(raw);
        let mut key: &'py [u8] = b"";
        let mut value: Option<&'py [u8]> = None;
        while !reader.done() {
            match reader.key()? {
                (1, LEN) => key = reader.bytes()?,
                (2, LEN) => {
                    if value.replace(reader.bytes()?).is_some() {
                        return None; // a message sent twice is merged by protobuf
                    }
                }
                (1 | 2, _) => return None,
                (_, wire) => reader.skip(wire)?,
            }
        }
        let key = self.key(key)?;
        let value = match value {
            Some(raw) => self.any_value(raw, depth)?,
            None => self.py.None().into_bound(self.py),
        };
        Some((key, value))
    }

    /// `value_from_pb`: the oneof member set last, None when none is (or the profiles-only strindex).
    fn any_value(&mut self, raw: &'py [u8], depth: usize) -> Parsed<Bound<'py, PyAny>> {
        if depth > MAX_VALUE_DEPTH {
            return None;
        }
        let py = self.py;
        let mut reader = Reader::new(raw);
        let mut value: Option<Bound<'py, PyAny>> = None;
        let mut seen = false;
        while !reader.done() {
            let (field, wire) = reader.key()?;
            let decoded = match (field, wire) {
                (1, LEN) => PyString::new(py, reader.string()?).into_any(),
                (2, VARINT) => (reader.varint()? != 0).into_pyobject(py).ok()?.to_owned().into_any(),
                (3, VARINT) => (reader.varint()? as i64).into_pyobject(py).ok()?.into_any(),
                (4, FIXED64) => f64::from_bits(reader.fixed64()?).into_pyobject(py).ok()?.into_any(),
                (5, LEN) => {
                    let items = PyList::empty(py);
                    let mut inner = Reader::new(reader.bytes()?);
                    while !inner.done() {
                        match inner.key()? {
                            (1, LEN) => items.append(self.any_value(inner.bytes()?, depth + 1)?).ok()?,
                            (1, _) => return None,
                            (_, wire) => inner.skip(wire)?,
                        }
                    }
                    items.into_any()
                }
                (6, LEN) => {
                    let items = PyDict::new(py);
                    let mut inner = Reader::new(reader.bytes()?);
                    while !inner.done() {
                        match inner.key()? {
                            (1, LEN) => {
                                let (key, item) = self.key_value(inner.bytes()?, depth + 1)?;
                                items.set_item(key, item).ok()?;
                            }
                            (1, _) => return None,
                            (_, wire) => inner.skip(wire)?,
                        }
                    }
                    items.into_any()
                }
                (7, LEN) => PyBytes::new(py, reader.bytes()?).into_any(),
                (8, VARINT) => {
                    reader.varint()?;
                    py.None().into_bound(py)
                }
                (1..=8, _) => return None,
                (_, wire) => {
                    reader.skip(wire)?;
                    continue;
                }
            };
            if seen {
                return None; // two members, or one twice: upb's merging is left to the Python path
            }
            seen = true;
            value = Some(decoded);
        }
        Some(value.unwrap_or_else(|| py.None().into_bound(py)))
    }

    fn event(&mut self, raw: &'py [u8]) -> Parsed<Bound<'py, PyAny>> {
        let mut reader = Reader::new(raw);
        let (mut time, mut name, mut dropped) = (0u64, "", 0u32);
        let mut attributes: Vec<&'py [u8]> = Vec::new();
        while !reader.done() {
            match reader.key()? {
                (1, FIXED64) => time = reader.fixed64()?,
                (2, LEN) => name = reader.string()?,
                (3, LEN) => attributes.push(reader.bytes()?),
                (4, VARINT) => dropped = reader.varint()? as u32,
                (1..=4, _) => return None,
                (_, wire) => reader.skip(wire)?,
            }
        }
        let attributes = self.attributes(&attributes)?;
        self.makers.event.call1((time, name, attributes, dropped)).ok()
    }

    fn link(&mut self, raw: &'py [u8]) -> Parsed<Bound<'py, PyAny>> {
        let py = self.py;
        let mut reader = Reader::new(raw);
        let (mut trace_id, mut span_id, mut state, mut dropped, mut flags) = (&b""[..], &b""[..], "", 0u32, 0u32);
        let mut attributes: Vec<&'py [u8]> = Vec::new();
        while !reader.done() {
            match reader.key()? {
                (1, LEN) => trace_id = reader.bytes()?,
                (2, LEN) => span_id = reader.bytes()?,
                (3, LEN) => state = reader.string()?,
                (4, LEN) => attributes.push(reader.bytes()?),
                (5, VARINT) => dropped = reader.varint()? as u32,
                (6, FIXED32) => flags = reader.fixed32()?,
                (1..=6, _) => return None,
                (_, wire) => reader.skip(wire)?,
            }
        }
        let attributes = self.attributes(&attributes)?;
        self.makers.link.call1((hex(py, trace_id), hex(py, span_id), state, attributes, dropped, flags)).ok()
    }

    /// One Span message as a model span (`span_from_pb`).
    fn span(&mut self, raw: &'py [u8], resource: &Bound<'py, PyAny>, scope: &Bound<'py, PyAny>) -> Parsed<Bound<'py, PyAny>> {
        let py = self.py;
        let mut reader = Reader::new(raw);
        let (mut trace_id, mut span_id, mut parent) = (&b""[..], &b""[..], &b""[..]);
        let (mut state, mut name) = ("", "");
        let (mut kind, mut start, mut end, mut flags) = (0i32, 0u64, 0u64, 0u32);
        let (mut dropped_attributes, mut dropped_events, mut dropped_links) = (0u32, 0u32, 0u32);
        let mut attributes: Vec<&'py [u8]> = Vec::new();
        let mut events: Vec<&'py [u8]> = Vec::new();
        let mut links: Vec<&'py [u8]> = Vec::new();
        let mut status: Option<&'py [u8]> = None;
        while !reader.done() {
            match reader.key()? {
                (1, LEN) => trace_id = reader.bytes()?,
                (2, LEN) => span_id = reader.bytes()?,
                (3, LEN) => state = reader.string()?,
                (4, LEN) => parent = reader.bytes()?,
                (5, LEN) => name = reader.string()?,
                (6, VARINT) => kind = reader.varint()? as i32,
                (7, FIXED64) => start = reader.fixed64()?,
                (8, FIXED64) => end = reader.fixed64()?,
                (9, LEN) => attributes.push(reader.bytes()?),
                (10, VARINT) => dropped_attributes = reader.varint()? as u32,
                (11, LEN) => events.push(reader.bytes()?),
                (12, VARINT) => dropped_events = reader.varint()? as u32,
                (13, LEN) => links.push(reader.bytes()?),
                (14, VARINT) => dropped_links = reader.varint()? as u32,
                (15, LEN) => {
                    if status.replace(reader.bytes()?).is_some() {
                        return None;
                    }
                }
                (16, FIXED32) => flags = reader.fixed32()?,
                (1..=16, _) => return None,
                (_, wire) => reader.skip(wire)?,
            }
        }
        let (mut message, mut code) = ("", 0i32);
        if let Some(raw) = status {
            let mut reader = Reader::new(raw);
            while !reader.done() {
                match reader.key()? {
                    (2, LEN) => message = reader.string()?,
                    (3, VARINT) => code = reader.varint()? as i32,
                    (2 | 3, _) => return None,
                    (_, wire) => reader.skip(wire)?,
                }
            }
        }
        let attributes = self.attributes(&attributes)?;
        if attributes.contains(intern!(py, ZIPKIN_ORIGIN_ATTRIBUTE)).ok()? {
            return None; // the origin is parsed out of the attributes by the Python path
        }
        let kinds = &self.makers.kinds;
        let codes = &self.makers.codes;
        let kind = if (0..kinds.len() as i32).contains(&kind) { kinds.get_item(kind as usize) } else { kinds.get_item(0) }.ok()?;
        let code = if (0..codes.len() as i32).contains(&code) { codes.get_item(code as usize) } else { codes.get_item(0) }.ok()?;
        let events = PyList::new(py, events.into_iter().map(|e| self.event(e)).collect::<Parsed<Vec<_>>>()?).ok()?;
        let links = PyList::new(py, links.into_iter().map(|l| self.link(l)).collect::<Parsed<Vec<_>>>()?).ok()?;
        let args = PyTuple::new(
            py,
            [
                hex(py, trace_id).into_any(),
                hex(py, span_id).into_any(),
                PyString::new(py, name).into_any(),
                start.into_pyobject(py).ok()?.into_any(),
                end.into_pyobject(py).ok()?.into_any(),
                resource.clone(),
                scope.clone(),
                hex(py, parent).into_any(),
                kind,
                code,
                PyString::new(py, message).into_any(),
                attributes.into_any(),
                events.into_any(),
                links.into_any(),
                PyString::new(py, state).into_any(),
                flags.into_pyobject(py).ok()?.into_any(),
                dropped_attributes.into_pyobject(py).ok()?.into_any(),
                dropped_events.into_pyobject(py).ok()?.into_any(),
                dropped_links.into_pyobject(py).ok()?.into_any(),
                py.None().into_bound(py),
            ],
        )
        .ok()?;
        self.makers.span.call1(args).ok()
    }
}

/// Python's side of the decoding, called in the order the Python decoder works: `make_resource(attrs)`
/// per ResourceSpans, `make_scope(name, version, attrs)` per ScopeSpans (admission's limits and warnings
/// run there), `admit(span, resource index, scope index, span index)` per span.
pub struct Steps<'py> {
    pub make_resource: Bound<'py, PyAny>,
    pub make_scope: Bound<'py, PyAny>,
    pub admit: Bound<'py, PyAny>,
}

/// Decodes `body`, handing each object to `steps`; false: declined (whatever the steps did is to be
/// discarded), an error: one the steps raised.
pub fn decode<'py>(py: Python<'py>, body: &'py [u8], makers: Makers<'py>, steps: &Steps<'py>) -> PyResult<bool> {
    let mut decoder = Decoder { py, makers, keys: std::collections::HashMap::new(), error: None };
    let decoded = decode_request(&mut decoder, body, steps).is_some();
    match decoder.error.take() {
        Some(error) => Err(error),
        None => Ok(decoded),
    }
}

fn call<'py>(decoder: &mut Decoder<'py>, result: PyResult<Bound<'py, PyAny>>) -> Parsed<Bound<'py, PyAny>> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            decoder.error = Some(error);
            None
        }
    }
}

fn decode_request<'py>(decoder: &mut Decoder<'py>, body: &'py [u8], steps: &Steps<'py>) -> Parsed<()> {
    let py = decoder.py;
    let mut r_index = 0usize;
    let mut reader = Reader::new(body);
    while !reader.done() {
        match reader.key()? {
            (1, LEN) => {}
            (1, _) => return None,
            (_, wire) => {
                reader.skip(wire)?;
                continue;
            }
        }
        // ResourceSpans
        let mut rs = Reader::new(reader.bytes()?);
        let mut resource: Option<&'py [u8]> = None;
        let mut scope_spans: Vec<&'py [u8]> = Vec::new();
        while !rs.done() {
            match rs.key()? {
                (1, LEN) => {
                    if resource.replace(rs.bytes()?).is_some() {
                        return None;
                    }
                }
                (2, LEN) => scope_spans.push(rs.bytes()?),
                (3, LEN) => {
                    rs.string()?;
                }
                (1..=3, _) => return None,
                (_, wire) => rs.skip(wire)?,
            }
        }
        let mut resource_attributes: Vec<&'py [u8]> = Vec::new();
        if let Some(raw) = resource {
            let mut r = Reader::new(raw);
            while !r.done() {
                match r.key()? {
                    (1, LEN) => resource_attributes.push(r.bytes()?),
                    (2, VARINT) => {
                        r.varint()?;
                    }
                    (1 | 2, _) => return None,
                    (_, wire) => r.skip(wire)?,
                }
            }
        }
        let attributes = decoder.attributes(&resource_attributes)?;
        let resource = call(decoder, steps.make_resource.call1((attributes,)))?;
        for (s_index, raw) in scope_spans.into_iter().enumerate() {
            let mut ss = Reader::new(raw);
            let mut scope: Option<&'py [u8]> = None;
            let mut spans: Vec<&'py [u8]> = Vec::new();
            while !ss.done() {
                match ss.key()? {
                    (1, LEN) => {
                        if scope.replace(ss.bytes()?).is_some() {
                            return None;
                        }
                    }
                    (2, LEN) => spans.push(ss.bytes()?),
                    (3, LEN) => {
                        ss.string()?;
                    }
                    (1..=3, _) => return None,
                    (_, wire) => ss.skip(wire)?,
                }
            }
            let (mut name, mut version) = ("", "");
            let mut scope_attributes: Vec<&'py [u8]> = Vec::new();
            if let Some(raw) = scope {
                let mut s = Reader::new(raw);
                while !s.done() {
                    match s.key()? {
                        (1, LEN) => name = s.string()?,
                        (2, LEN) => version = s.string()?,
                        (3, LEN) => scope_attributes.push(s.bytes()?),
                        (4, VARINT) => {
                            s.varint()?;
                        }
                        (1..=4, _) => return None,
                        (_, wire) => s.skip(wire)?,
                    }
                }
            }
            let attributes = decoder.attributes(&scope_attributes)?;
            let scope = call(decoder, steps.make_scope.call1((name, version, attributes)))?;
            for (index, raw) in spans.into_iter().enumerate() {
                let span = decoder.span(raw, &resource, &scope)?;
                call(decoder, steps.admit.call1((span, r_index, s_index, index)))?;
            }
        }
        r_index += 1;
    }
    let _ = py;
    Some(())
}
