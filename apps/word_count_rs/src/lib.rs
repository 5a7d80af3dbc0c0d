//! word_count in Rust: map-reduce over the KV store, the same keys and the
//! same answer as apps/word_count (C++).
//!
//!   split_file   body (or files/input.txt) -> wordcount_slice_<token>_<i>, ~1 MiB each
//!   count_slice  (one per slice, triggered by its key) -> wordcount_part_<token>_<i>
//!   split_file   waits, merges the parts, answers {"word":count,...} sorted by key
//!
//! A word is a maximal run of [A-Za-z0-9], lowercased; every other byte separates.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use waverless::files::File;
use waverless::{body, kv, Args, Code, Error, Result};

const SLICE_BYTES: usize = 1 << 20;
const SLICE_PREFIX: &str = "wordcount_slice_";
const PART_PREFIX: &str = "wordcount_part_";
const INPUT_FILE: &str = "input.txt"; // the host roots paths at files/

/// The multiply-rotate hash of rustc's FxHasher: words are short and not
/// attacker-chosen across apps, and SipHash (std's default) would make the
/// count twice as slow as the C++ app's std::hash.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Counts<K> = HashMap<K, u64, BuildHasherDefault<FxHasher>>;

/// Keys are shared by all concurrent requests of the app, so each request
/// names its keys with 16 random hex chars.
fn new_token() -> Result<String> {
    let mut raw = [0u8; 8];
    waverless::random_bytes(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{:02x}", b)).collect())
}

/// Length of the next slice at the front of data: the longest prefix of at
/// most SLICE_BYTES that ends after a '\n', or up to the first '\n' when the
/// first line alone is longer. 0 means "need more data" (only when !at_end)
/// or "nothing left".
fn next_slice_length(data: &[u8], at_end: bool) -> usize {
    if data.len() <= SLICE_BYTES {
        return if at_end { data.len() } else { 0 };
    }
    let nl = data[..SLICE_BYTES]
        .iter()
        .rposition(|&c| c == b'\n')
        .or_else(|| {
            data[SLICE_BYTES..]
                .iter()
                .position(|&c| c == b'\n')
                .map(|p| p + SLICE_BYTES)
        });
    match nl {
        Some(nl) => nl + 1,
        None if at_end => data.len(),
        None => 0,
    }
}

/// Stores the slices of one request; each set triggers one count_slice.
struct SliceWriter {
    token: String,
    count: usize,
}

impl SliceWriter {
    fn key(&self, prefix: &str, i: usize) -> String {
        format!("{}{}_{}", prefix, self.token, i)
    }

    fn write(&mut self, slice: &[u8]) -> Result<()> {
        kv::set(self.key(SLICE_PREFIX, self.count), slice)
            .map_err(|e| e.context(format!("word_count: storing slice {}", self.count)))?;
        self.count += 1;
        Ok(())
    }
}

/// Slices an input that arrives in pieces (the request body while it is
/// still uploading, or the data file) through a buffer of about two slices:
/// counting starts with the first slice, and the input is never held whole.
/// `buf` may already hold the input's first bytes.
fn slice_stream(
    mut buf: Vec<u8>,
    mut read: impl FnMut(&mut [u8]) -> Result<usize>,
    out: &mut SliceWriter,
) -> Result<()> {
    let mut at_end = false;
    loop {
        let n = next_slice_length(&buf, at_end);
        if n > 0 {
            out.write(&buf[..n])?;
            buf.drain(..n);
        } else if at_end {
            return Ok(());
        } else {
            let old = buf.len();
            buf.resize(old + SLICE_BYTES, 0);
            let got = read(&mut buf[old..])?;
            buf.truncate(old + got);
            at_end = got == 0;
        }
    }
}

/// The request body, or files/input.txt when the body is empty.
fn slice_input(out: &mut SliceWriter) -> Result<()> {
    let mut first = vec![0u8; SLICE_BYTES];
    let got = body::read(&mut first).map_err(|e| e.context("word_count: reading the body"))?;
    if got > 0 {
        first.truncate(got);
        return slice_stream(first, |b| body::read(b), out)
            .map_err(|e| e.context("word_count: the request body"));
    }
    let file = File::open(INPUT_FILE)
        .map_err(|e| e.context("word_count: empty body and files/input.txt cannot be opened"))?;
    let mut offset = 0u64;
    slice_stream(
        Vec::new(),
        |b| {
            let got = file.read_at(offset, b)?;
            offset += got as u64;
            Ok(got)
        },
        out,
    )
}

/// Adds one part ("<word> <count>\n" lines, as count_slice writes them).
fn merge_part(part: &[u8], key: &str, totals: &mut Counts<Vec<u8>>) -> Result<()> {
    let malformed = || {
        Error::new(
            Code::Invalid,
            format!("word_count: malformed partial counts in {}", key),
        )
    };
    for line in part.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        let space = line.iter().position(|&c| c == b' ').ok_or_else(malformed)?;
        let n: u64 = std::str::from_utf8(&line[space + 1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?;
        let word = &line[..space];
        // Look up by slice first: only words not yet seen allocate.
        match totals.get_mut(word) {
            Some(total) => *total += n,
            None => {
                totals.insert(word.to_vec(), n);
            }
        }
    }
    Ok(())
}

/// HTTP entry, declared `body: stream`: the body (or, when it is empty,
/// files/input.txt) is sliced while it arrives.
fn split_file(_: &Args) -> Result<()> {
    let mut slices = SliceWriter {
        token: new_token()?,
        count: 0,
    };
    let mut result = slice_input(&mut slices);

    // Wait even after a failure: slices already stored are being counted,
    // and their parts must be cleaned up below.
    let waited = waverless::wait_triggered()
        .map_err(|e| e.context("word_count: a count_slice invocation failed; see its log"));
    if result.is_ok() {
        result = waited;
    }

    let mut totals: Counts<Vec<u8>> = Counts::default();
    for i in 0..slices.count {
        let part_key = slices.key(PART_PREFIX, i);
        if result.is_ok() {
            result = match kv::get(&part_key) {
                Ok(Some(part)) => merge_part(&part, &part_key, &mut totals),
                Ok(None) => Err(Error::new(
                    Code::NotFound,
                    format!("word_count: {} is missing", part_key),
                )),
                Err(e) => Err(e),
            };
        }
        if result.is_err() {
            // After a failure, a slice may still be waiting uncounted. Cleanup
            // is best effort: the first error is the one to report.
            let _ = kv::delete(slices.key(SLICE_PREFIX, i));
        }
        let deleted = kv::delete(&part_key);
        if result.is_ok() {
            result = deleted;
        }
    }
    result?;

    let mut sorted: Vec<(&Vec<u8>, &u64)> = totals.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));

    // Words are [a-z0-9] only, so they need no JSON escaping. Output goes
    // out in chunks to avoid a second copy of a large result.
    let mut json = Vec::with_capacity(64 << 10);
    json.push(b'{');
    for (i, (word, count)) in sorted.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.push(b'"');
        json.extend_from_slice(word);
        json.extend_from_slice(b"\":");
        json.extend_from_slice(count.to_string().as_bytes());
        if json.len() >= 64 << 10 {
            waverless::output(&json)?;
            json.clear();
        }
    }
    json.push(b'}');
    waverless::output(&json)
}

/// Byte -> its lowercase form if it belongs to a word, else 0.
const FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'0'..=b'9' | b'a'..=b'z' => b,
            b'A'..=b'Z' => b - b'A' + b'a',
            _ => 0,
        };
        c += 1;
    }
    t
};

/// Triggered by wordcount_slice_<token>_<i>: counts that slice into
/// wordcount_part_<token>_<i>.
fn count_slice(args: &Args) -> Result<()> {
    let key = match args.str(0) {
        Some(k) if k.starts_with(SLICE_PREFIX) => k,
        _ => {
            return Err(Error::new(
                Code::Invalid,
                "word_count: count_slice expects a wordcount_slice_<token>_<i> key",
            ))
        }
    };
    let mut slice = kv::get(key)?
        .ok_or_else(|| Error::new(Code::NotFound, format!("word_count: {} is missing", key)))?;
    kv::delete(key)?;

    // Lowercase words in place so the map can key on slices of the value.
    for c in slice.iter_mut() {
        *c = FOLD[*c as usize];
    }
    let mut counts: Counts<&[u8]> = Counts::default();
    counts.reserve(1 << 14);
    for word in slice.split(|&c| c == 0).filter(|w| !w.is_empty()) {
        *counts.entry(word).or_insert(0) += 1;
    }

    let mut part = Vec::with_capacity(counts.len() * 16);
    for (word, count) in &counts {
        part.extend_from_slice(word);
        part.push(b' ');
        part.extend_from_slice(count.to_string().as_bytes());
        part.push(b'\n');
    }
    // Same <token>_<i> suffix, so split_file finds the part by index.
    let part_key = format!("{}{}", PART_PREFIX, &key[SLICE_PREFIX.len()..]);
    kv::set(&part_key, &part)
}

waverless::export!(split_file, count_slice);
