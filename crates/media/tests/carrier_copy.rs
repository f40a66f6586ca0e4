//! The carrier copy and the limits, through the public API, on images made
//! here with the `image` crate (no binary fixtures).

use std::io::Cursor;

use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{
    AnimationDecoder, Delay, DynamicImage, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage,
};
use switchboard_media::{
    CarrierCopy, ImageInfo, ImageKind, MediaError, Oversize, carrier_copy, inspect,
};

const MMS_LIMIT: usize = 600 * 1024;

/// A small deterministic generator, so every run sees the same images.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, bytes: &mut [u8], mask: u8) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            for (byte, random) in chunk.iter_mut().zip(word) {
                *byte = byte.wrapping_add(random & mask);
            }
        }
    }
}

/// A gradient with noise on top: a photo's worst case for compression.
fn noisy_rgb(width: u32, height: u32, mask: u8, seed: u64) -> RgbImage {
    let mut image = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    Noise(seed).fill(&mut image, mask);
    image
}

fn png(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_with_encoder(PngEncoder::new(&mut out))
        .expect("encode the test PNG");
    out
}

fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .expect("encode the test JPEG");
    out
}

fn gif(frames: Vec<RgbaImage>, delay_ms: u32, repeat: Repeat) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
        encoder.set_repeat(repeat).expect("set the loop count");
        for frame in frames {
            let delay = Delay::from_numer_denom_ms(delay_ms, 1);
            encoder
                .encode_frame(Frame::from_parts(frame, 0, 0, delay))
                .expect("encode a test GIF frame");
        }
    }
    out
}

/// A frame of noise drawn from a fixed palette of 64 colours, so the test
/// GIF is encoded exactly, without quantizing.
fn palette_noise(width: u32, height: u32, noise: &mut Noise) -> RgbaImage {
    let mut indexes = vec![0u8; (width * height) as usize];
    noise.fill(&mut indexes, 0x3f);
    RgbaImage::from_fn(width, height, |x, y| {
        let i = indexes[(y * width + x) as usize];
        Rgba([i * 4, 255 - i * 4, i.wrapping_mul(37), 255])
    })
}

/// A coloured square moving over a gradient: compresses as animations do.
fn moving_square(width: u32, height: u32, frame: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        let left = frame * 20;
        if (left..left + 120).contains(&x) && (200..320).contains(&y) {
            Rgba([220, 40, 40, 255])
        } else {
            Rgba([(x * 255 / width) as u8, (y * 255 / height) as u8, 90, 255])
        }
    })
}

/// Checks the copy is a valid image of its declared kind and size, within
/// the limit, with the original's aspect ratio within a pixel.
fn assert_valid_copy(copy: &CarrierCopy, original: (u32, u32)) -> DynamicImage {
    assert!(
        copy.bytes.len() <= MMS_LIMIT,
        "the copy has {} bytes",
        copy.bytes.len()
    );
    assert_eq!(copy.content_type, copy.kind.content_type());
    let format = match copy.kind {
        ImageKind::Jpeg => ImageFormat::Jpeg,
        ImageKind::Png => ImageFormat::Png,
        ImageKind::Gif => ImageFormat::Gif,
    };
    let decoded =
        image::load_from_memory_with_format(&copy.bytes, format).expect("the copy decodes");
    assert_eq!(
        (decoded.width(), decoded.height()),
        (copy.width, copy.height)
    );
    let (width, height) = original;
    let expected_height = f64::from(copy.width) * f64::from(height) / f64::from(width);
    assert!(
        (f64::from(copy.height) - expected_height).abs() <= 1.0,
        "{}x{} does not keep the aspect ratio of {width}x{height}",
        copy.width,
        copy.height
    );
    decoded
}

fn gif_frames(bytes: &[u8]) -> Vec<Frame> {
    GifDecoder::new(Cursor::new(bytes))
        .expect("a GIF")
        .into_frames()
        .collect_frames()
        .expect("the GIF's frames decode")
}

#[test]
fn a_five_megabyte_png_becomes_a_jpeg_within_the_limit() {
    let original = png(&DynamicImage::ImageRgb8(noisy_rgb(2500, 2000, 0x1f, 1)));
    assert!(
        original.len() > 5_000_000,
        "the PNG has {} bytes",
        original.len()
    );
    let copy = carrier_copy(&original, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.kind, ImageKind::Jpeg);
    assert_valid_copy(&copy, (2500, 2000));
}

#[test]
fn a_twelve_megapixel_jpeg_is_shrunk_within_the_limit() {
    let original = jpeg(&noisy_rgb(4000, 3000, 0x3f, 2), 95);
    assert!(
        original.len() > 3_000_000,
        "the JPEG has {} bytes",
        original.len()
    );
    let copy = carrier_copy(&original, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.kind, ImageKind::Jpeg);
    assert_valid_copy(&copy, (4000, 3000));
}

#[test]
fn a_large_animated_gif_of_noise_comes_out_within_the_limit() {
    let mut noise = Noise(3);
    let frames = (0..24)
        .map(|_| palette_noise(800, 600, &mut noise))
        .collect();
    let original = gif(frames, 100, Repeat::Infinite);
    assert!(
        original.len() > 4 * MMS_LIMIT,
        "the GIF has {} bytes",
        original.len()
    );
    let copy = carrier_copy(&original, MMS_LIMIT).expect("a copy");
    assert_valid_copy(&copy, (800, 600));
    // Either animated still, or its first frame as a JPEG.
    match copy.kind {
        ImageKind::Gif => assert_eq!(gif_frames(&copy.bytes).len(), 24),
        kind => assert_eq!(kind, ImageKind::Jpeg),
    }
}

#[test]
fn an_animation_that_can_fit_keeps_its_frames_delays_and_loops() {
    let frames = (0..30).map(|i| moving_square(800, 600, i)).collect();
    let original = gif(frames, 70, Repeat::Finite(3));
    assert!(
        original.len() > MMS_LIMIT,
        "the GIF has {} bytes",
        original.len()
    );
    let copy = carrier_copy(&original, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.kind, ImageKind::Gif);
    assert_valid_copy(&copy, (800, 600));
    let frames = gif_frames(&copy.bytes);
    assert_eq!(frames.len(), 30);
    for frame in &frames {
        assert_eq!(frame.delay(), Delay::from_numer_denom_ms(70, 1));
    }
    // The NETSCAPE2.0 extension: a sub-block of three bytes, 1, the count.
    let at = copy
        .bytes
        .windows(11)
        .position(|window| window == b"NETSCAPE2.0")
        .expect("the copy has a loop count");
    assert_eq!(copy.bytes[at + 11..at + 15], [3, 1, 3, 0]);
}

#[test]
fn a_transparent_png_stays_a_png_when_it_fits() {
    // A transparent sticker on a large canvas: compresses well as PNG.
    let sticker = RgbaImage::from_fn(3000, 2000, |x, y| {
        let (dx, dy) = (i64::from(x) - 1500, i64::from(y) - 1000);
        if dx * dx + dy * dy < 800 * 800 {
            Rgba([(x % 256) as u8, (y % 256) as u8, 200, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut original = png(&DynamicImage::ImageRgba8(sticker));
    // Padding after IEND makes the file too large without changing the
    // picture, so the copy must be re-encoded.
    original.resize(MMS_LIMIT + 1, 0);
    let copy = carrier_copy(&original, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.kind, ImageKind::Png);
    let decoded = assert_valid_copy(&copy, (3000, 2000));
    let corner = decoded.to_rgba8().get_pixel(0, 0).0;
    assert_eq!(corner[3], 0, "the corner stays transparent");
}

#[test]
fn a_transparent_png_that_cannot_stay_a_png_is_flattened_on_white() {
    let mut image = RgbaImage::new(2400, 1800);
    let mut noise = Noise(4);
    noise.fill(&mut image, 0xff);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        // Transparent on the left edge, opaque noise elsewhere.
        pixel.0[3] = if x < 200 && y < 200 { 0 } else { 255 };
    }
    let original = png(&DynamicImage::ImageRgba8(image));
    let copy = carrier_copy(&original, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.kind, ImageKind::Jpeg);
    let decoded = assert_valid_copy(&copy, (2400, 1800)).to_rgb8();
    let corner = decoded.get_pixel(0, 0).0;
    assert!(corner.iter().all(|&c| c > 240), "white, not {corner:?}");
}

#[test]
fn a_small_image_passes_through_unchanged() {
    let small_png = png(&DynamicImage::ImageRgb8(noisy_rgb(64, 48, 0x0f, 5)));
    let copy = carrier_copy(&small_png, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.bytes, small_png);
    assert_eq!(
        (copy.kind, copy.content_type, copy.width, copy.height),
        (ImageKind::Png, "image/png", 64, 48)
    );

    let small_gif = gif(
        (0..3).map(|i| moving_square(200, 400, i)).collect(),
        50,
        Repeat::Infinite,
    );
    let copy = carrier_copy(&small_gif, MMS_LIMIT).expect("a copy");
    assert_eq!(copy.bytes, small_gif);
    assert_eq!(copy.content_type, "image/gif");
}

#[test]
fn a_copy_that_cannot_fit_is_refused_after_a_few_attempts() {
    let original = jpeg(&noisy_rgb(300, 200, 0x3f, 6), 90);
    let error = carrier_copy(&original, 100).expect_err("no JPEG fits in 100 bytes");
    assert_eq!(error, MediaError::CannotFit { max_bytes: 100 });
    assert_eq!(error.code(), "image_cannot_fit");
}

#[test]
fn inspect_reads_kind_size_and_frames() {
    let still = jpeg(&noisy_rgb(320, 240, 0x0f, 7), 80);
    assert_eq!(
        inspect(&still),
        Ok(ImageInfo {
            kind: ImageKind::Jpeg,
            width: 320,
            height: 240,
            frames: 1
        })
    );
    let animation = gif(
        (0..4).map(|i| moving_square(640, 480, i)).collect(),
        40,
        Repeat::Infinite,
    );
    let info = inspect(&animation).expect("a GIF");
    assert_eq!(
        (info.kind, info.width, info.height),
        (ImageKind::Gif, 640, 480)
    );
    assert_eq!(info.frames, 4);
    assert!(info.is_animated());
}

#[test]
fn files_that_are_not_images_are_refused_whatever_their_name() {
    let text = b"Meeting notes\nBring the projector.\n";
    let webp = b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0";
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>";
    for bytes in [&text[..], webp, pdf, svg] {
        assert_eq!(inspect(bytes), Err(MediaError::NotAnImage));
        let error = carrier_copy(bytes, MMS_LIMIT).expect_err("not an image");
        assert_eq!(error, MediaError::NotAnImage);
        assert_eq!(error.code(), "not_an_image");
        assert_eq!(
            error.to_string(),
            "Only JPEG, PNG and GIF images can be attached"
        );
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A PNG of a few dozen bytes that declares `width` x `height` pixels. Its
/// image data is not valid deflate, so decoding it would fail as unreadable:
/// refusing it as too large shows it was never decoded.
fn png_declaring(width: u32, height: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([bit_depth, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", b"\x78\x9c\xff\xff\xff\xff");
    chunk(&mut out, b"IEND", b"");
    out
}

#[test]
fn the_test_png_header_is_well_formed() {
    // The IHDR of a PNG made by the encoder matches the hand-built one.
    let real = png(&DynamicImage::ImageRgb8(RgbImage::new(7, 5)));
    let built = png_declaring(7, 5, 8, 2);
    assert_eq!(real[..33], built[..33]);
}

#[test]
fn a_png_declaring_a_huge_image_is_refused_before_decoding() {
    let bomb = png_declaring(100_000, 100_000, 8, 2);
    assert!(bomb.len() < 100);
    let too_large = MediaError::TooLarge(Oversize::Dimensions {
        width: 100_000,
        height: 100_000,
    });
    assert_eq!(inspect(&bomb), Err(too_large.clone()));
    assert_eq!(carrier_copy(&bomb, 10), Err(too_large.clone()));
    assert_eq!(too_large.code(), "image_too_large");

    // Within the longest side, but too many pixels in all.
    let wide = png_declaring(11_000, 11_000, 8, 6);
    assert_eq!(
        inspect(&wide),
        Err(MediaError::TooLarge(Oversize::Dimensions {
            width: 11_000,
            height: 11_000
        }))
    );
}

#[test]
fn a_png_needing_too_much_memory_is_refused_by_the_decoder_limit() {
    // 48 megapixels pass the pixel limit, but at 8 bytes a pixel (16-bit
    // RGBA) decoding would need far more than the allocation limit.
    let heavy = png_declaring(8000, 6000, 16, 6);
    assert!(inspect(&heavy).is_ok());
    assert_eq!(
        carrier_copy(&heavy, 10),
        Err(MediaError::TooLarge(Oversize::Memory))
    );
}

#[test]
fn a_gif_with_a_huge_logical_screen_is_refused_before_decoding() {
    let mut bomb = b"GIF89a".to_vec();
    bomb.extend(60_000u16.to_le_bytes());
    bomb.extend(60_000u16.to_le_bytes());
    bomb.extend([0x80, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
    // One frame of one pixel, then the trailer.
    bomb.extend([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4c, 0x01, 0, 0x3b]);
    let too_large = MediaError::TooLarge(Oversize::Dimensions {
        width: 60_000,
        height: 60_000,
    });
    assert_eq!(inspect(&bomb), Err(too_large.clone()));
    assert_eq!(carrier_copy(&bomb, 10), Err(too_large));
}

#[test]
fn errors_speak_to_people_and_have_stable_codes() {
    let too_large = MediaError::TooLarge(Oversize::Dimensions {
        width: 100_000,
        height: 100_000,
    });
    assert_eq!(
        too_large.to_string(),
        "This image is too large (100000 × 100000 pixels); images of at most 12000 pixels a side and 50 megapixels (12 for a GIF) can be attached"
    );
    assert_eq!(MediaError::Unreadable.code(), "image_unreadable");
    assert_eq!(
        MediaError::CannotFit {
            max_bytes: MMS_LIMIT
        }
        .to_string(),
        "This image cannot be made small enough to send by MMS (at most 600 KB)"
    );
}

#[test]
fn a_damaged_image_is_unreadable() {
    let whole = png(&DynamicImage::ImageRgb8(noisy_rgb(400, 300, 0x3f, 8)));
    // The headers are intact, the picture is cut short.
    let cut = &whole[..whole.len() / 3];
    assert!(inspect(cut).is_ok());
    assert_eq!(carrier_copy(cut, 1000), Err(MediaError::Unreadable));
}
