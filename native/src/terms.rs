//! A span's search terms (`query/span_terms.py`'s SearchTerms), kept as the JSON they are written as:
//! `tags` and `nums` the inside of a JSON array of strings, `texts` the inside of the one string that
//! joins them with newlines. Names passed in are already JSON-escaped.

use crate::json::{encode_number_into, escape_into};

/// `span_terms.MAX_KEY_SET_CHARS`.
const MAX_KEY_SET_CHARS: usize = 4096 - 64;

/// A list of byte strings in one buffer.
#[derive(Default)]
pub struct Strings {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Strings {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn push(&mut self, item: &[u8]) {
        self.bytes.extend_from_slice(item);
        self.ends.push(self.bytes.len());
    }

    fn extend(&mut self, other: &Strings) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|end| base + end));
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(move |(start, end)| &self.bytes[start..end])
    }
}

#[derive(Default)]
pub struct Terms {
    pub tags: Vec<u8>,
    pub nums: Vec<u8>,
    pub texts: Vec<u8>,
    n_texts: usize,
    // The keys of the map being walked (escaped, and as they are) until `flush_keys`.
    keys: Strings,
    keys_raw: Strings,
    key_chars: usize,
    key_has_newline: bool,
    /// `SearchTerms.key_sets`: each set's keys joined by newlines, as they are (for its id) and escaped.
    pub key_sets_raw: Strings,
    pub key_sets: Strings,
}

impl Terms {
    pub fn clear(&mut self) {
        self.tags.clear();
        self.nums.clear();
        self.texts.clear();
        self.n_texts = 0;
        self.reset_keys();
        self.key_sets_raw.clear();
        self.key_sets.clear();
    }

    fn reset_keys(&mut self) {
        self.keys.clear();
        self.keys_raw.clear();
        self.key_chars = 0;
        self.key_has_newline = false;
    }

    fn open_tag(&mut self) {
        if !self.tags.is_empty() {
            self.tags.push(b',');
        }
        self.tags.push(b'"');
    }

    /// An attribute key of the map being walked, escaped and as it is: it joins the map's key set
    /// (`flush_keys`).
    pub fn key(&mut self, name: &[u8], raw: &[u8]) {
        // Characters as Python counts them: every UTF-8 byte but continuation bytes starts one.
        let chars = raw.iter().filter(|byte| (**byte & 0xC0) != 0x80).count();
        self.keys.push(name);
        self.keys_raw.push(raw);
        self.key_chars += chars;
        self.key_has_newline |= raw.contains(&b'\n');
    }

    /// The walked map's keys as one key set, or, where `span_terms.key_set` says they cannot share one,
    /// one tag each (after the map's other tags), as `SearchTerms.add_attributes` does.
    pub fn flush_keys(&mut self) {
        let n = self.keys.ends.len();
        if n == 0 {
            return;
        }
        let joined_chars = self.key_chars + n - 1;
        if self.key_has_newline || joined_chars > MAX_KEY_SET_CHARS {
            let keys = std::mem::take(&mut self.keys);
            for name in keys.iter() {
                self.tag_raw(name);
            }
            self.keys = keys;
        } else {
            self.key_sets_raw.push(&join(&self.keys_raw, b"\n"));
            self.key_sets.push(&join(&self.keys, b"\\n"));
        }
        self.reset_keys();
    }

    /// A tag already escaped.
    pub fn tag_raw(&mut self, raw: &[u8]) {
        self.open_tag();
        self.tags.extend_from_slice(raw);
        self.tags.push(b'"');
    }

    /// `name=text`
    pub fn tag_eq_str(&mut self, name: &[u8], text: &str) {
        self.open_tag();
        self.tags.extend_from_slice(name);
        self.tags.push(b'=');
        escape_into(&mut self.tags, text);
        self.tags.push(b'"');
    }

    /// `name=raw`, `raw` needing no escaping (digits, base64, `true`).
    pub fn tag_eq_raw(&mut self, name: &[u8], raw: &[u8]) {
        self.open_tag();
        self.tags.extend_from_slice(name);
        self.tags.push(b'=');
        self.tags.extend_from_slice(raw);
        self.tags.push(b'"');
    }

    /// `prefix` (escaped) followed by `text`, e.g. `event:name=<name>`.
    pub fn tag_prefixed(&mut self, prefix: &[u8], text: &str) {
        self.open_tag();
        self.tags.extend_from_slice(prefix);
        escape_into(&mut self.tags, text);
        self.tags.push(b'"');
    }

    /// `name=<16 hex digits>` of a numeric value.
    pub fn num(&mut self, name: &[u8], value: f64) {
        if !self.nums.is_empty() {
            self.nums.push(b',');
        }
        self.nums.push(b'"');
        self.nums.extend_from_slice(name);
        self.nums.push(b'=');
        encode_number_into(&mut self.nums, value);
        self.nums.push(b'"');
    }

    pub fn text(&mut self, text: &str) {
        if self.n_texts > 0 {
            self.texts.extend_from_slice(b"\\n");
        }
        escape_into(&mut self.texts, text);
        self.n_texts += 1;
    }

    /// Appends another collection's terms after this one's (the resource's after the span's own).
    pub fn extend(&mut self, other: &Terms) {
        for (mine, theirs) in [(&mut self.tags, &other.tags), (&mut self.nums, &other.nums)] {
            if !theirs.is_empty() {
                if !mine.is_empty() {
                    mine.push(b',');
                }
                mine.extend_from_slice(theirs);
            }
        }
        self.key_sets_raw.extend(&other.key_sets_raw);
        self.key_sets.extend(&other.key_sets);
        if other.n_texts > 0 {
            if self.n_texts > 0 {
                self.texts.extend_from_slice(b"\\n");
            }
            self.texts.extend_from_slice(&other.texts);
            self.n_texts += other.n_texts;
        }
    }
}

fn join(items: &Strings, separator: &[u8]) -> Vec<u8> {
    let mut joined = Vec::with_capacity(items.bytes.len() + items.ends.len() * separator.len());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(separator);
        }
        joined.extend_from_slice(item);
    }
    joined
}
