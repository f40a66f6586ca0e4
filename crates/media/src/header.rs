//! Reading an image's size from its headers, without decoding its pixels.
//!
//! The parsers here walk the file's structure (PNG's `IHDR`, JPEG's frame
//! header, every block of a GIF) and never inflate or decompress anything,
//! so a file declaring billions of pixels costs no more to inspect than its
//! own length.

use crate::{
    ImageKind, MAX_ANIMATION_PIXELS, MAX_FRAMES, MAX_GIF_PIXELS, MAX_PIXELS, MAX_SIDE, MediaError,
    Oversize, sniff,
};

/// What the headers of an image declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub kind: ImageKind,
    /// Width in pixels as stored (a GIF's logical screen; a JPEG's EXIF
    /// orientation is not applied).
    pub width: u32,
    /// Height in pixels as stored.
    pub height: u32,
    /// The number of frames: more than one only for an animated GIF.
    pub frames: u32,
}

impl ImageInfo {
    /// Whether the image is an animation (a GIF of several frames).
    pub fn is_animated(&self) -> bool {
        self.frames > 1
    }
}

/// What [`inspect`] learns, with what the carrier copy needs beyond
/// [`ImageInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) info: ImageInfo,
    /// A GIF's NETSCAPE2.0 loop count: `None` when absent (play once),
    /// `Some(0)` to loop forever.
    pub(crate) gif_loops: Option<u16>,
}

/// Reads an image's kind, size and frame count from its headers alone, and
/// checks them against the crate's limits.
///
/// The kind comes from the content ([`sniff`]). Nothing is decoded: a small
/// file that declares a huge image (a decompression bomb) is refused with
/// [`MediaError::TooLarge`] here, before any decoder allocates for it. A
/// header that is cut short or inconsistent is [`MediaError::Unreadable`].
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, MediaError> {
    read_header(bytes).map(|header| header.info)
}

pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, MediaError> {
    let kind = sniff(bytes)?;
    let header = match kind {
        ImageKind::Png => still(kind, png_size(bytes)?),
        ImageKind::Jpeg => still(kind, jpeg_size(bytes)?),
        ImageKind::Gif => gif_header(bytes)?,
    };
    check_still(header.info)?;
    Ok(header)
}

fn still(kind: ImageKind, (width, height): (u32, u32)) -> Header {
    Header {
        info: ImageInfo {
            kind,
            width,
            height,
            frames: 1,
        },
        gif_loops: None,
    }
}

fn check_still(info: ImageInfo) -> Result<(), MediaError> {
    let max_pixels = match info.kind {
        ImageKind::Gif => MAX_GIF_PIXELS,
        ImageKind::Jpeg | ImageKind::Png => MAX_PIXELS,
    };
    check_dimensions(info.width, info.height, max_pixels)
}

fn check_dimensions(width: u32, height: u32, max_pixels: u64) -> Result<(), MediaError> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > max_pixels {
        return Err(Oversize::Dimensions { width, height }.into());
    }
    Ok(())
}

fn u16_be(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// A PNG's size is in its first chunk, `IHDR`, at a fixed offset.
fn png_size(bytes: &[u8]) -> Result<(u32, u32), MediaError> {
    let length = u32_be(bytes, 8).ok_or(MediaError::Unreadable)?;
    if length != 13 || bytes.get(12..16) != Some(b"IHDR") {
        return Err(MediaError::Unreadable);
    }
    let width = u32_be(bytes, 16).ok_or(MediaError::Unreadable)?;
    let height = u32_be(bytes, 20).ok_or(MediaError::Unreadable)?;
    if width == 0 || height == 0 {
        return Err(MediaError::Unreadable);
    }
    Ok((width, height))
}

/// A JPEG's size is in its frame header (a SOFn marker), found by skipping
/// the segments before it by their lengths.
fn jpeg_size(bytes: &[u8]) -> Result<(u32, u32), MediaError> {
    let mut at = 2;
    loop {
        if bytes.get(at) != Some(&0xff) {
            return Err(MediaError::Unreadable);
        }
        // A marker may be preceded by any number of fill bytes.
        while bytes.get(at) == Some(&0xff) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or(MediaError::Unreadable)?;
        at += 1;
        match marker {
            // Markers that stand alone, without a length.
            0x01 | 0xd0..=0xd8 => continue,
            // Scan data or the end of the image before any frame header.
            0xd9 | 0xda => return Err(MediaError::Unreadable),
            // Every SOFn except DHT (c4), JPG (c8) and DAC (cc).
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                let length = u16_be(bytes, at).ok_or(MediaError::Unreadable)?;
                let height = u16_be(bytes, at + 3).ok_or(MediaError::Unreadable)?;
                let width = u16_be(bytes, at + 5).ok_or(MediaError::Unreadable)?;
                // A zero height is deferred to a DNL marker, which the
                // decoder does not support.
                if length < 8 || width == 0 || height == 0 {
                    return Err(MediaError::Unreadable);
                }
                return Ok((u32::from(width), u32::from(height)));
            }
            _ => {
                let length = u16_be(bytes, at).ok_or(MediaError::Unreadable)?;
                if length < 2 {
                    return Err(MediaError::Unreadable);
                }
                at += usize::from(length);
            }
        }
    }
}

/// Walks every block of a GIF: the logical screen, each frame's descriptor
/// (its data sub-blocks are skipped by their lengths, never decompressed)
/// and the NETSCAPE2.0 extension that says how often to loop.
fn gif_header(bytes: &[u8]) -> Result<Header, MediaError> {
    let unreadable = || MediaError::Unreadable;
    let width = u32::from(u16_le(bytes, 6).ok_or_else(unreadable)?);
    let height = u32::from(u16_le(bytes, 8).ok_or_else(unreadable)?);
    let flags = *bytes.get(10).ok_or_else(unreadable)?;
    if width == 0 || height == 0 {
        return Err(unreadable());
    }
    check_dimensions(width, height, MAX_GIF_PIXELS)?;
    let screen = u64::from(width) * u64::from(height);

    let mut at = 13 + color_table_len(flags);
    let mut frames: u32 = 0;
    let mut gif_loops = None;
    loop {
        match bytes.get(at) {
            // A missing trailer is tolerated, as browsers do.
            None | Some(0x3b) => break,
            Some(0x21) => {
                let label = *bytes.get(at + 1).ok_or_else(unreadable)?;
                at += 2;
                if label == 0xff {
                    gif_loops = gif_loops.or(loop_count(bytes, at));
                }
                at = skip_sub_blocks(bytes, at)?;
            }
            Some(0x2c) => {
                let frame_width = u32::from(u16_le(bytes, at + 5).ok_or_else(unreadable)?);
                let frame_height = u32::from(u16_le(bytes, at + 7).ok_or_else(unreadable)?);
                let frame_flags = *bytes.get(at + 9).ok_or_else(unreadable)?;
                check_dimensions(frame_width, frame_height, MAX_GIF_PIXELS)?;
                frames += 1;
                if frames > MAX_FRAMES || u64::from(frames) * screen > MAX_ANIMATION_PIXELS {
                    return Err(Oversize::Animation {
                        frames,
                        width,
                        height,
                    }
                    .into());
                }
                // The descriptor, its local colour table, the LZW code
                // size, then the image data.
                at += 10 + color_table_len(frame_flags) + 1;
                at = skip_sub_blocks(bytes, at)?;
            }
            Some(_) => return Err(unreadable()),
        }
    }
    if frames == 0 {
        return Err(unreadable());
    }
    Ok(Header {
        info: ImageInfo {
            kind: ImageKind::Gif,
            width,
            height,
            frames,
        },
        gif_loops,
    })
}

fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// Skips a chain of data sub-blocks (a length byte, that many bytes, until
/// a zero length) and returns the offset after it.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Result<usize, MediaError> {
    loop {
        let length = usize::from(*bytes.get(at).ok_or(MediaError::Unreadable)?);
        at += 1 + length;
        if length == 0 {
            return Ok(at);
        }
    }
}

/// The loop count of an application extension starting at `at`, if it is
/// the NETSCAPE2.0 (or identical ANIMEXTS1.0) looping extension.
fn loop_count(bytes: &[u8], at: usize) -> Option<u16> {
    if bytes.get(at) != Some(&11) {
        return None;
    }
    let name = bytes.get(at + 1..at + 12)?;
    if name != b"NETSCAPE2.0" && name != b"ANIMEXTS1.0" {
        return None;
    }
    if bytes.get(at + 12) != Some(&3) || bytes.get(at + 13) != Some(&1) {
        return None;
    }
    u16_le(bytes, at + 14)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif(screen: (u16, u16), frames: &[(u16, u16)], loops: Option<u16>) -> Vec<u8> {
        let mut bytes = b"GIF89a".to_vec();
        bytes.extend(screen.0.to_le_bytes());
        bytes.extend(screen.1.to_le_bytes());
        // A global colour table of two entries.
        bytes.extend([0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
        if let Some(loops) = loops {
            bytes.extend([0x21, 0xff, 11]);
            bytes.extend(b"NETSCAPE2.0");
            bytes.extend([3, 1]);
            bytes.extend(loops.to_le_bytes());
            bytes.push(0);
        }
        for &(width, height) in frames {
            bytes.extend([0x21, 0xf9, 4, 0, 10, 0, 0, 0]);
            bytes.extend([0x2c, 0, 0, 0, 0]);
            bytes.extend(width.to_le_bytes());
            bytes.extend(height.to_le_bytes());
            // No local table, LZW code size 2, one data sub-block.
            bytes.extend([0, 2, 2, 0x4c, 0x01, 0]);
        }
        bytes.push(0x3b);
        bytes
    }

    #[test]
    fn a_gif_declares_its_screen_frames_and_loops() {
        let header = read_header(&gif((40, 30), &[(40, 30); 3], Some(0))).map_err(|e| e.code());
        assert_eq!(
            header,
            Ok(Header {
                info: ImageInfo {
                    kind: ImageKind::Gif,
                    width: 40,
                    height: 30,
                    frames: 3
                },
                gif_loops: Some(0),
            })
        );
        let once = read_header(&gif((40, 30), &[(40, 30); 2], None)).map(|h| h.gif_loops);
        assert_eq!(once, Ok(None));
    }

    #[test]
    fn a_gif_with_a_huge_screen_or_frame_is_too_large() {
        assert_eq!(
            inspect(&gif((65_535, 65_535), &[(1, 1)], None)),
            Err(MediaError::TooLarge(Oversize::Dimensions {
                width: 65_535,
                height: 65_535
            }))
        );
        assert_eq!(
            inspect(&gif((10, 10), &[(10, 10), (10_000, 10_000)], None)),
            Err(MediaError::TooLarge(Oversize::Dimensions {
                width: 10_000,
                height: 10_000
            }))
        );
    }

    #[test]
    fn a_gif_with_too_many_large_frames_is_too_large() {
        // Each frame fits, but all of them together ask for too much work.
        let frames = vec![(3000, 3000); 30];
        assert_eq!(
            inspect(&gif((3000, 3000), &frames, Some(0))),
            Err(MediaError::TooLarge(Oversize::Animation {
                frames: 23,
                width: 3000,
                height: 3000
            }))
        );
        let frames = vec![(1, 1); MAX_FRAMES as usize + 1];
        assert_eq!(
            inspect(&gif((1, 1), &frames, Some(0))).map_err(|e| e.code()),
            Err("image_too_large")
        );
    }

    #[test]
    fn a_gif_cut_short_or_without_frames_is_unreadable() {
        let whole = gif((4, 4), &[(4, 4)], None);
        assert_eq!(inspect(&whole[..20]), Err(MediaError::Unreadable));
        assert_eq!(
            inspect(&gif((4, 4), &[], None)),
            Err(MediaError::Unreadable)
        );
        assert_eq!(
            inspect(&gif((0, 4), &[(4, 4)], None)),
            Err(MediaError::Unreadable)
        );
    }

    #[test]
    fn a_jpeg_size_is_found_after_other_segments() {
        let mut jpeg = b"\xff\xd8".to_vec();
        // An APP0 segment, fill bytes, then SOF2 (progressive).
        jpeg.extend(b"\xff\xe0\x00\x06JFIF");
        jpeg.extend(b"\xff\xff\xc2\x00\x11\x08\x0b\xb8\x0f\xa0\x03");
        jpeg.extend([0; 9]);
        assert_eq!(
            inspect(&jpeg),
            Ok(ImageInfo {
                kind: ImageKind::Jpeg,
                width: 4000,
                height: 3000,
                frames: 1
            })
        );
        assert_eq!(inspect(&jpeg[..12]), Err(MediaError::Unreadable));
        assert_eq!(
            inspect(b"\xff\xd8\xff\xda\x00\x02"),
            Err(MediaError::Unreadable)
        );
    }

    #[test]
    fn a_jpeg_over_the_limits_is_too_large() {
        let jpeg = b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\x00\x10\x03";
        assert_eq!(
            inspect(jpeg),
            Err(MediaError::TooLarge(Oversize::Dimensions {
                width: 16,
                height: 65_535
            }))
        );
    }
}
