//! Whatever bytes arrive, the pipeline answers with a value or an error,
//! never a panic, and never reports an image beyond the limits.

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, DynamicImage, Frame, ImageFormat, Rgba, RgbaImage};
use proptest::prelude::*;
use switchboard_media::{MAX_PIXELS, MAX_SIDE, carrier_copy, inspect};

fn small_images() -> Vec<Vec<u8>> {
    let picture = RgbaImage::from_fn(24, 16, |x, y| {
        Rgba([
            (x * 10) as u8,
            (y * 15) as u8,
            99,
            if x < 4 { 0 } else { 255 },
        ])
    });
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(picture.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .expect("a PNG");
    let mut jpeg = Vec::new();
    DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(picture.clone()).to_rgb8())
        .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .expect("a JPEG");
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut gif, 30);
        encoder.set_repeat(Repeat::Infinite).expect("loops");
        for _ in 0..3 {
            let frame = Frame::from_parts(picture.clone(), 0, 0, Delay::from_numer_denom_ms(50, 1));
            encoder.encode_frame(frame).expect("a frame");
        }
    }
    vec![png, jpeg, gif]
}

proptest! {
    #[test]
    fn any_bytes_after_a_signature_are_handled(
        signature in prop::sample::select(vec![
            &b"\x89PNG\r\n\x1a\n"[..], b"\xff\xd8\xff", b"GIF89a", b"GIF87a",
        ]),
        rest in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = signature.to_vec();
        bytes.extend(rest);
        if let Ok(info) = inspect(&bytes) {
            prop_assert!(info.width <= MAX_SIDE && info.height <= MAX_SIDE);
            prop_assert!(u64::from(info.width) * u64::from(info.height) <= MAX_PIXELS);
            prop_assert!(info.frames >= 1);
        }
        let _ = carrier_copy(&bytes, 64);
    }

    #[test]
    fn damaged_images_are_handled(
        which in 0usize..3,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = small_images().swap_remove(which);
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        bytes.truncate(cut.index(bytes.len()) + 1);
        // A limit below any of these images forces a decode.
        if let Ok(copy) = carrier_copy(&bytes, 200) {
            prop_assert!(copy.bytes.len() <= 200);
        }
    }
}
