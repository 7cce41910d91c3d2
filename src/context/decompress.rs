//! Compressed inputs: recognising gzip, zstd, bzip2 and xz by their magic
//! bytes and decoding them as a stream.
//!
//! Detection reads the first bytes of a file and never its name: a
//! `app.log.gz` that is plain text loads as text, and a gzip file named
//! `app.log` is decompressed. Every signature checked is one no text file
//! starts with (each holds a byte below 0x20 that is not whitespace, or,
//! for bzip2, ten bytes including the block magic), so a text file is not
//! mistaken for an archive.
//!
//! Concatenated members (`cat a.gz b.gz`, `zstd` frames, `pbzip2` streams,
//! `xz` streams) decode as one document, as `zcat` and friends do.
//!
//! All four decoders are pure Rust (flate2 over miniz_oxide, ruzstd,
//! bzip2 over libbz2-rs-sys, lzma-rust2): the static build needs no C
//! toolchain. Their memory is bounded whatever the input claims: gzip and
//! bzip2 by their formats (32 KiB and ~4 MiB), zstd by ruzstd's 128 MiB
//! window limit, xz by [`XZ_MEMORY_LIMIT`]. The decompressed size is
//! bounded by the caller (see `ContextBuilder::max_stream_bytes`).

use std::io::{BufRead, Read};

/// The most memory the xz decoder may use for one block's dictionary:
/// `xz -9` needs 65 MiB; a header asking for more is refused rather than
/// allocated.
pub const XZ_MEMORY_LIMIT: u32 = 256 << 10; // KiB

/// A compression format rlm decompresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// gzip (RFC 1952), `.gz`.
    Gzip,
    /// Zstandard, `.zst`.
    Zstd,
    /// bzip2, `.bz2`.
    Bzip2,
    /// xz, `.xz`.
    Xz,
}

/// Bytes of a file's head that [`Format::detect`] needs.
pub const MAGIC_LEN: usize = 10;

impl Format {
    /// The format whose signature `head` starts with, if any.
    pub fn detect(head: &[u8]) -> Option<Format> {
        // gzip's two-byte magic plus its only defined method, deflate.
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            return Some(Format::Gzip);
        }
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Some(Format::Zstd);
        }
        if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            return Some(Format::Xz);
        }
        // "BZh" and a block size could open a text file; the block magic
        // (the digits of pi) or the end-of-stream magic after it cannot.
        if head.len() >= MAGIC_LEN
            && head.starts_with(b"BZh")
            && (b'1'..=b'9').contains(&head[3])
            && (head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
                || head[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
        {
            return Some(Format::Bzip2);
        }
        None
    }

    /// The format's usual name, as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
        }
    }

    /// A reader of the decompressed bytes of `source`. Corrupt or truncated
    /// input is a read error (`InvalidData` or `UnexpectedEof`).
    pub fn decoder<'a>(self, source: impl BufRead + Send + 'a) -> Box<dyn Read + Send + 'a> {
        match self {
            Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(source)),
            Format::Zstd => Box::new(ZstdFrames::new(source)),
            Format::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(source)),
            Format::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
                source,
                true,
                XZ_MEMORY_LIMIT,
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every frame of a zstd stream, in order: ruzstd's `StreamingDecoder`
/// reads one. Skippable frames are passed over; each frame's checksum,
/// when it has one, is verified.
struct ZstdFrames<R: BufRead> {
    source: R,
    decoder: ruzstd::decoding::FrameDecoder,
    /// A frame's header has been read and its end not yet collected.
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            source,
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Reads the next frame's header; false at the end of the input.
    fn next_frame(&mut self) -> std::io::Result<bool> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.init(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped =
                        std::io::copy(&mut (&mut self.source).take(want), &mut std::io::sink())?;
                    if skipped < want {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(invalid(e)),
            }
        }
    }
}

fn invalid(message: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(invalid)?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The frame is decoded and collected: check it, then the next.
            if let (Some(stored), Some(computed)) = (
                self.decoder.get_checksum_from_data(),
                self.decoder.get_calculated_checksum(),
            ) {
                if stored != computed {
                    return Err(invalid("zstd frame checksum mismatch"));
                }
            }
            self.in_frame = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(format: Format, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        format.decoder(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    /// An encoder of test fixtures.
    type Encode = fn(&[u8]) -> Vec<u8>;

    fn all() -> [(Format, Encode); 4] {
        [
            (Format::Gzip, gzip),
            (Format::Zstd, zstd),
            (Format::Bzip2, bzip2),
            (Format::Xz, xz),
        ]
    }

    #[test]
    fn each_format_is_detected_by_its_magic_and_round_trips() {
        let text = b"one line\nanother line\n".repeat(100);
        for (format, encode) in all() {
            let packed = encode(&text);
            assert_eq!(Format::detect(&packed), Some(format), "{format}");
            assert_eq!(decode(format, &packed).unwrap(), text, "{format}");
        }
    }

    #[test]
    fn concatenated_members_decode_as_one_stream() {
        for (format, encode) in all() {
            let mut packed = encode(b"first\n");
            packed.extend(encode(b"second\n"));
            assert_eq!(
                decode(format, &packed).unwrap(),
                b"first\nsecond\n",
                "{format}"
            );
        }
    }

    #[test]
    fn text_that_looks_like_a_signature_is_not_an_archive() {
        for text in [&b"BZh9 is not bzip2\n"[..], b"\x1f\x8b", b"plain\n", b""] {
            assert_eq!(Format::detect(text), None, "{text:?}");
        }
    }

    #[test]
    fn truncated_and_corrupt_input_is_an_error_not_short_output() {
        let text = b"some text that compresses\n".repeat(1000);
        for (format, encode) in all() {
            let packed = encode(&text);
            let truncated = &packed[..packed.len() / 2];
            assert!(decode(format, truncated).is_err(), "{format}: truncated");
            let mut flipped = packed.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0xff;
            flipped[mid + 1] ^= 0x55;
            let decoded = decode(format, &flipped);
            assert!(
                decoded.as_ref().map_or(true, |d| d != &text),
                "{format}: corrupt input decoded to the original"
            );
        }
    }
}
