//! A span's search terms (`query/span_terms.py`'s SearchTerms), kept as the JSON they are written as:
//! `tags` and `nums` the inside of a JSON array of strings, `texts` the inside of the one string that
//! joins them with newlines. Names passed in are already JSON-escaped.

use crate::json::{encode_number_into, escape_into};

#[derive(Default)]
pub struct Terms {
    pub tags: Vec<u8>,
    pub nums: Vec<u8>,
    pub texts: Vec<u8>,
    n_texts: usize,
}

impl Terms {
    pub fn clear(&mut self) {
        self.tags.clear();
        self.nums.clear();
        self.texts.clear();
        self.n_texts = 0;
    }

    fn open_tag(&mut self) {
        if !self.tags.is_empty() {
            self.tags.push(b',');
        }
        self.tags.push(b'"');
    }

    /// `name`
    pub fn tag_name(&mut self, name: &[u8]) {
        self.tag_raw(name);
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
        if other.n_texts > 0 {
            if self.n_texts > 0 {
                self.texts.extend_from_slice(b"\\n");
            }
            self.texts.extend_from_slice(&other.texts);
            self.n_texts += other.n_texts;
        }
    }
}
