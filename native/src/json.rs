//! JSON text as orjson writes it: strings escaped the same way, integers in decimal, floats by zmij.

/// Escapes of the bytes below 0x20 (orjson: the five short forms, else `\u00xx` in lower-case hex).
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as the inside of a JSON string (no quotes): `"` and `\` escaped, control
/// characters escaped, everything else (DEL, non-ASCII, U+2028) as it is, as orjson does.
pub fn escape_into(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if is_clean(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether no byte needs escaping (most text): 8 bytes at a time, SWAR (a byte below 0x20, a `"` or
/// a `\\` sets its high bit in the test word).
#[inline]
fn is_clean(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let below = x.wrapping_sub(ONES * 0x20);
        let quote = (x ^ (ONES * b'"' as u64)).wrapping_sub(ONES);
        let backslash = (x ^ (ONES * b'\\' as u64)).wrapping_sub(ONES);
        if (below | quote | backslash) & !x & HIGHS != 0 {
            return false;
        }
    }
    !words.remainder().iter().any(|&b| needs_escape(b))
}

#[inline(always)]
fn needs_escape(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// A JSON string, quoted.
pub fn string_into(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    escape_into(out, text);
    out.push(b'"');
}

/// The range of integers orjson writes (it refuses anything outside a 64-bit signed or unsigned int).
pub fn int_fits(value: i128) -> bool {
    (i64::MIN as i128..=u64::MAX as i128).contains(&value)
}

pub fn int_into(out: &mut Vec<u8>, value: i128) {
    let mut digits = [0u8; 40];
    let mut at = digits.len();
    // u64 arithmetic: every integer written fits (int_fits), and 128-bit division is a libcall.
    let mut rest = value.unsigned_abs() as u64;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// A finite float as orjson 3.13 writes it.
pub fn float_into(out: &mut Vec<u8>, value: f64) {
    let mut buffer = zmij::Buffer::new();
    out.extend_from_slice(buffer.format_finite(value).as_bytes());
}

/// Python's `repr(float)` (what `str(value)` and an f-string give): the shortest digits that read
/// back as the same double, fixed notation for exponents -4..=15, else `d.ddde+XX` / `de-XX`.
pub fn python_float_repr(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    // zmij's shortest round-trip digits (ties to even, as Python's repr; Rust's `{:e}` rounds ties up).
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(value);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp_part) = match text.split_once('e') {
        Some((m, e)) => (m, e.trim_start_matches('+').parse::<i32>().expect("zmij writes a decimal exponent")),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // Scientific exponent of the first significant digit, and the significant digits themselves.
    let all: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    let first = all.iter().position(|b| *b != b'0');
    let (digits, exp) = match first {
        None => (vec![b'0'], 0),
        Some(first) => {
            let last = all.iter().rposition(|b| *b != b'0').expect("a non-zero digit exists");
            (all[first..=last].to_vec(), whole.len() as i32 - 1 - first as i32 + exp_part)
        }
    };
    if negative {
        out.push(b'-');
    }
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-point) as usize));
            out.extend_from_slice(&digits);
        } else if point as usize >= digits.len() {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[point as usize..]);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        use std::io::Write;
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// `encode_number` of `query/span_terms.py`: 16 hex digits whose order is the numeric order.
pub fn encode_number_into(out: &mut Vec<u8>, value: f64) {
    let bits = (value + 0.0).to_bits();
    let code = if bits & (1 << 63) != 0 { !bits } else { bits | (1 << 63) };
    for shift in (0..16).rev() {
        out.push(HEX[((code >> (shift * 4)) & 15) as usize]);
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (`base64.b64encode`).
pub fn base64_into(out: &mut Vec<u8>, data: &[u8]) {
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = (c[0] as u32) << 16 | (c[1] as u32) << 8 | c[2] as u32;
        out.extend_from_slice(&[
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            B64[(n >> 6) as usize & 63],
            B64[n as usize & 63],
        ]);
    }
    match chunks.remainder() {
        [a] => {
            let n = (*a as u32) << 16;
            out.extend_from_slice(&[B64[(n >> 18) as usize & 63], B64[(n >> 12) as usize & 63], b'=', b'=']);
        }
        [a, b] => {
            let n = (*a as u32) << 16 | (*b as u32) << 8;
            out.extend_from_slice(&[
                B64[(n >> 18) as usize & 63],
                B64[(n >> 12) as usize & 63],
                B64[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// `date.isoformat()` of a day number since 1970-01-01 (proleptic Gregorian, H. Hinnant's algorithm).
pub fn iso_date_into(out: &mut Vec<u8>, days: i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    use std::io::Write;
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
}
