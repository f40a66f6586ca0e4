//! The copy of an image handed to carriers, small enough for MMS. The
//! policy is documented on [`carrier_copy`]; the sizes it names are the
//! constants below.

use std::borrow::Cow;
use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{
    AnimationDecoder, Delay, DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageReader,
    Limits, Pixel, RgbImage, RgbaImage,
};

use crate::header::{Header, read_header};
use crate::{ImageKind, MAX_DECODED_BYTES, MAX_SIDE, MediaError, Oversize};

/// A copy of an image ready to hand to a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierCopy {
    /// The encoded image, at most the requested number of bytes.
    pub bytes: Vec<u8>,
    pub kind: ImageKind,
    /// The MIME type of `bytes`, as sent in `Content-Type`.
    pub content_type: &'static str,
    /// The copy's size in pixels. A JPEG passed through unchanged keeps its
    /// EXIF orientation, so it may be shown turned, height for width.
    pub width: u32,
    pub height: u32,
}

/// The long side of the first attempt at a still copy: more than a phone
/// screen shows, less than a photo wastes.
const FIRST_LONG_SIDE: u32 = 2048;
/// The long side of the first attempt at an animated copy.
const ANIMATION_LONG_SIDE: u32 = 640;
/// Below this long side an animation is not worth keeping; its first frame
/// is sent instead.
const MIN_ANIMATION_LONG_SIDE: u32 = 120;
/// Below this long side a transparent PNG is not worth keeping as a PNG; a
/// JPEG flattened on white, larger, is sent instead.
const MIN_PNG_LONG_SIDE: u32 = 640;
/// JPEG qualities tried at each size, best first.
const JPEG_QUALITIES: [u8; 3] = [85, 72, 60];
/// Sizes tried for a JPEG, and for a PNG or an animation before giving up.
const JPEG_SIZES: usize = 8;
const PNG_SIZES: usize = 3;
const ANIMATION_SIZES: usize = 4;
/// NeuQuant's sampling step for GIF palettes: 1 is slowest, 30 fastest; 10
/// is the quantizer's own default trade-off.
const GIF_QUANTIZER_SPEED: i32 = 10;

/// Makes a copy of an image of at most `max_bytes` for a carrier (the
/// server uses 600 KB).
///
/// The content must be a JPEG, PNG or GIF within the crate's limits (see
/// [`inspect`](crate::inspect)). The policy, in order:
///
/// - An image already within `max_bytes` is returned as it is, byte for
///   byte, without being decoded.
/// - An animated GIF stays animated if it fits at a useful size: every frame
///   is resized (at most 640 pixels on the long side, and no smaller than
///   120, or its own size if smaller), with its frame delays and loop count
///   kept. Otherwise its first frame goes as a JPEG.
/// - A PNG with real transparency (some pixel not fully opaque) stays a PNG
///   at smaller sizes, so a logo or sticker keeps its shape on any
///   background; if no PNG of at least 640 pixels on the long side fits, it
///   is flattened onto white and goes as a JPEG.
/// - Everything else (photos, opaque PNGs, still GIFs) becomes a JPEG: at
///   most 2048 pixels on the long side, at decreasing quality, then at
///   smaller sizes, each estimated from how far the last attempt missed.
///   Transparent pixels are flattened onto white.
///
/// Decoding runs under [`MAX_DECODED_BYTES`]. A JPEG's EXIF orientation is
/// applied to the pixels, since a re-encoded copy carries no EXIF. Every
/// resize keeps the aspect ratio (the short side is rounded from the long
/// one) and uses the Catmull-Rom filter: sharp, and cheaper than Lanczos.
/// Every step has a fixed number of attempts, so the work always ends; if
/// even the smallest attempt is too large the result is
/// [`MediaError::CannotFit`].
///
/// CPU-bound: call it from a blocking thread, never on the async runtime.
pub fn carrier_copy(bytes: &[u8], max_bytes: usize) -> Result<CarrierCopy, MediaError> {
    let header = read_header(bytes)?;
    let info = header.info;
    if bytes.len() <= max_bytes {
        return Ok(CarrierCopy {
            bytes: bytes.to_vec(),
            kind: info.kind,
            content_type: info.kind.content_type(),
            width: info.width,
            height: info.height,
        });
    }
    if info.is_animated()
        && let Some(copy) = animated_copy(bytes, header, max_bytes)?
    {
        return Ok(copy);
    }
    let image = decode_still(info.kind, bytes)?;
    if info.kind == ImageKind::Png && has_transparency(&image) {
        let rgba = image.to_rgba8();
        if let Some(copy) = png_copy(&rgba, max_bytes)? {
            return Ok(copy);
        }
        return jpeg_copy(&flatten_on_white(&rgba), max_bytes);
    }
    if image.color().has_alpha() {
        // A GIF's transparent pixels; a PNG's alpha is all opaque here.
        return jpeg_copy(&flatten_on_white(&image.to_rgba8()), max_bytes);
    }
    jpeg_copy(&image.to_rgb8(), max_bytes)
}

fn decoder_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

fn decode_error(error: ImageError) -> MediaError {
    match error {
        ImageError::Limits(_) => Oversize::Memory.into(),
        _ => MediaError::Unreadable,
    }
}

fn encode_error(_: ImageError) -> MediaError {
    // Encoding pixels already in memory into a Vec fails only on dimensions
    // the size steps never produce; there is no better answer than this.
    MediaError::Unreadable
}

/// Decodes a still image (a GIF's first frame) with its orientation applied.
fn decode_still(kind: ImageKind, bytes: &[u8]) -> Result<DynamicImage, MediaError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    reader.limits(decoder_limits());
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // The decoders count their own buffers against the limit, not the
    // image they decode into: that one is checked here.
    if decoder.total_bytes() > MAX_DECODED_BYTES {
        return Err(Oversize::Memory.into());
    }
    // A damaged EXIF block is no reason to refuse the picture.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn has_transparency(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageRgba8(rgba) => rgba.pixels().any(|pixel| pixel.0[3] != u8::MAX),
        DynamicImage::ImageLumaA8(luma) => luma.pixels().any(|pixel| pixel.0[1] != u8::MAX),
        other if other.color().has_alpha() => {
            other.to_rgba8().pixels().any(|pixel| pixel.0[3] != u8::MAX)
        }
        _ => false,
    }
}

fn flatten_on_white(rgba: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u16::from(a);
        let over_white = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255).min(255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// The size of `(width, height)` scaled so its long side is `long`, never
/// larger than the original; the short side is rounded from the long one so
/// the aspect ratio is kept within a pixel.
fn with_long_side(width: u32, height: u32, long: u32) -> (u32, u32) {
    let (w, h) = (u64::from(width), u64::from(height));
    let long = u64::from(long.max(1));
    let (new_w, new_h) = if w >= h {
        let new_w = long.min(w);
        (new_w, ((h * new_w + w / 2) / w).max(1))
    } else {
        let new_h = long.min(h);
        (((w * new_h + h / 2) / h).max(1), new_h)
    };
    // Both are at most the original sides, which are u32.
    (new_w as u32, new_h as u32)
}

/// The long side to try after an attempt of `long` came out at `got` bytes
/// for a limit of `max_bytes`: encoded size grows roughly with the area, so
/// the side shrinks with the square root, with a margin, and always by a
/// useful step.
fn next_long_side(long: u32, got: usize, max_bytes: usize) -> u32 {
    let ratio = (max_bytes as f64 / got.max(1) as f64).sqrt() * 0.9;
    let factor = ratio.clamp(0.3, 0.85);
    ((f64::from(long) * factor) as u32).min(long.saturating_sub(1))
}

fn long_side(width: u32, height: u32) -> u32 {
    width.max(height)
}

/// The image at `width` x `height`, resized from the last, larger, attempt
/// rather than the original: each size step costs less than the one before.
fn shrunk<'a, P>(
    current: &'a mut Cow<'_, ImageBuffer<P, Vec<u8>>>,
    width: u32,
    height: u32,
) -> &'a ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if current.dimensions() != (width, height) {
        *current = Cow::Owned(imageops::resize(
            current.as_ref(),
            width,
            height,
            FilterType::CatmullRom,
        ));
    }
    current
}

fn jpeg_copy(rgb: &RgbImage, max_bytes: usize) -> Result<CarrierCopy, MediaError> {
    let (width, height) = rgb.dimensions();
    let mut current = Cow::Borrowed(rgb);
    let mut long = FIRST_LONG_SIDE.min(long_side(width, height));
    for _ in 0..JPEG_SIZES {
        if long == 0 {
            break;
        }
        let (w, h) = with_long_side(width, height, long);
        let pixels = shrunk(&mut current, w, h);
        let mut smallest = usize::MAX;
        for quality in JPEG_QUALITIES {
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(pixels)
                .map_err(encode_error)?;
            if out.len() <= max_bytes {
                return Ok(copy(out, ImageKind::Jpeg, w, h));
            }
            smallest = out.len();
            // Lower qualities save well under half: when this far off,
            // only a smaller size will do.
            if out.len() > max_bytes * 5 / 2 {
                break;
            }
        }
        long = next_long_side(long, smallest, max_bytes);
    }
    Err(MediaError::CannotFit { max_bytes })
}

/// A PNG at decreasing sizes, or `None` if none fits.
fn png_copy(rgba: &RgbaImage, max_bytes: usize) -> Result<Option<CarrierCopy>, MediaError> {
    let (width, height) = rgba.dimensions();
    let floor = MIN_PNG_LONG_SIDE.min(long_side(width, height));
    let mut current = Cow::Borrowed(rgba);
    let mut long = FIRST_LONG_SIDE.min(long_side(width, height));
    for _ in 0..PNG_SIZES {
        if long < floor {
            break;
        }
        let (w, h) = with_long_side(width, height, long);
        let pixels = shrunk(&mut current, w, h);
        let mut out = Vec::new();
        let encoder =
            PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive);
        pixels.write_with_encoder(encoder).map_err(encode_error)?;
        if out.len() <= max_bytes {
            return Ok(Some(copy(out, ImageKind::Png, w, h)));
        }
        long = next_long_side(long, out.len(), max_bytes);
    }
    Ok(None)
}

/// An animated GIF at decreasing sizes, or `None` if it does not fit at a
/// useful size.
fn animated_copy(
    bytes: &[u8],
    header: Header,
    max_bytes: usize,
) -> Result<Option<CarrierCopy>, MediaError> {
    let info = header.info;
    let floor = MIN_ANIMATION_LONG_SIDE.min(long_side(info.width, info.height));
    // Each frame gets its share of the budget; below about a third of a
    // byte a pixel GIF does not go, which bounds the first size to try. The
    // resized frames are all kept, at four bytes a pixel, within the
    // decoding limit.
    let frames = u64::from(info.frames);
    let per_frame = (max_bytes as u64 * 3 / frames)
        .min(MAX_DECODED_BYTES / 4 / frames)
        .max(1);
    let area = u64::from(info.width) * u64::from(info.height);
    let budget_long = if area <= per_frame {
        long_side(info.width, info.height)
    } else {
        let scale = (per_frame as f64 / area as f64).sqrt();
        (f64::from(long_side(info.width, info.height)) * scale) as u32
    };
    let mut long = ANIMATION_LONG_SIDE
        .min(budget_long)
        .min(long_side(info.width, info.height));
    if long < floor {
        return Ok(None);
    }

    // Frames are decoded once, each resized to the first size as it comes,
    // so only one frame of the original size is in memory at a time.
    let (first_w, first_h) = with_long_side(info.width, info.height, long);
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(decode_error)?;
    decoder.set_limits(decoder_limits()).map_err(decode_error)?;
    let mut frames: Vec<(RgbaImage, Delay)> = Vec::new();
    for frame in decoder.into_frames() {
        let frame = frame.map_err(decode_error)?;
        let delay = frame.delay();
        let buffer = frame.into_buffer();
        let buffer = if buffer.dimensions() == (first_w, first_h) {
            buffer
        } else {
            imageops::resize(&buffer, first_w, first_h, FilterType::CatmullRom)
        };
        frames.push((buffer, delay));
    }

    let repeat = header.gif_loops.map(|loops| match loops {
        0 => Repeat::Infinite,
        n => Repeat::Finite(n),
    });
    for _ in 0..ANIMATION_SIZES {
        let (w, h) = with_long_side(first_w, first_h, long);
        let out = encode_gif(&frames, (w, h), repeat)?;
        if out.len() <= max_bytes {
            return Ok(Some(copy(out, ImageKind::Gif, w, h)));
        }
        long = next_long_side(long, out.len(), max_bytes);
        if long < floor {
            break;
        }
    }
    Ok(None)
}

fn encode_gif(
    frames: &[(RgbaImage, Delay)],
    (width, height): (u32, u32),
    repeat: Option<Repeat>,
) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, GIF_QUANTIZER_SPEED);
        if let Some(repeat) = repeat {
            encoder.set_repeat(repeat).map_err(encode_error)?;
        }
        for (buffer, delay) in frames {
            let buffer = if buffer.dimensions() == (width, height) {
                buffer.clone()
            } else {
                imageops::resize(buffer, width, height, FilterType::CatmullRom)
            };
            encoder
                .encode_frame(image::Frame::from_parts(buffer, 0, 0, *delay))
                .map_err(encode_error)?;
        }
    }
    Ok(out)
}

fn copy(bytes: Vec<u8>, kind: ImageKind, width: u32, height: u32) -> CarrierCopy {
    CarrierCopy {
        bytes,
        kind,
        content_type: kind.content_type(),
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resize_keeps_the_aspect_ratio_within_a_pixel() {
        assert_eq!(with_long_side(4000, 3000, 2048), (2048, 1536));
        assert_eq!(with_long_side(3000, 4000, 2048), (1536, 2048));
        assert_eq!(with_long_side(2500, 2000, 1000), (1000, 800));
        assert_eq!(with_long_side(1001, 3, 100), (100, 1));
        assert_eq!(with_long_side(640, 480, 4000), (640, 480));
    }

    #[test]
    fn each_size_step_is_smaller() {
        assert_eq!(next_long_side(1000, 10_000_000, 600), 300);
        assert_eq!(next_long_side(1000, 601, 600), 850);
        assert_eq!(next_long_side(1, 601, 600), 0);
    }

    #[test]
    fn transparency_is_flattened_onto_white() {
        let mut rgba = RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let flat = flatten_on_white(&rgba);
        assert_eq!(flat.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(flat.get_pixel(1, 0).0, [10, 20, 30]);
    }
}
