//! Images attached to MMS messages.
//!
//! This crate decides what an upload is by its content ([`sniff`]), reads its
//! size from the headers alone and refuses what is too large to decode
//! safely ([`inspect`]), makes the small copy a carrier accepts
//! ([`carrier_copy`]), keeps files content-addressed on disk
//! ([`MediaStore`]) or in an S3-compatible bucket ([`BucketStore`]), and
//! signs the expiring URLs carriers fetch copies from ([`UrlSigner`]). It
//! knows nothing of HTTP, the store of conversations or who may see a file:
//! the server asks it and applies the answer.
//!
//! **Everything here is synchronous and CPU-bound on purpose, but for
//! [`BucketStore`].** Decoding, resizing and encoding an image takes from
//! milliseconds to seconds, hashing it ([`Content::new`]) takes a while, and
//! [`MediaStore::put`] waits for the disk. Callers run these functions on a
//! blocking thread pool (`tokio::task::spawn_blocking` or a dedicated pool),
//! never on the async runtime's threads. [`BucketStore`] is the opposite:
//! its methods wait on the network and do no heavy work, so they are async
//! and run on the runtime (the `object_store` crate brings tokio for them).
//! The crate depends on no HTTP server and no database.
//!
//! Memory is bounded: [`inspect`] checks the dimensions and frame count a
//! file declares against [`MAX_SIDE`], [`MAX_PIXELS`], [`MAX_GIF_PIXELS`],
//! [`MAX_FRAMES`] and [`MAX_ANIMATION_PIXELS`] before a single pixel is
//! decoded, and the decoders run under an allocation limit of
//! [`MAX_DECODED_BYTES`], so a decompression bomb is refused with
//! [`MediaError::TooLarge`] instead of being decoded.

mod bucket;
mod carrier;
mod header;
mod kind;
#[cfg(feature = "moto")]
pub mod moto;
mod signed_url;
mod store;

pub use bucket::{Addressing, BucketConfig, BucketStore, Content};
pub use carrier::{CarrierCopy, carrier_copy};
pub use header::{ImageInfo, inspect};
pub use kind::{ImageKind, sniff};
pub use signed_url::{SignatureError, UrlSigner};
pub use store::{InvalidMediaId, MediaId, MediaStore};

/// The longest side, in pixels, of an image this crate will decode.
pub const MAX_SIDE: u32 = 12_000;

/// The most pixels a still image (JPEG, PNG) may have to be decoded.
pub const MAX_PIXELS: u64 = 50_000_000;

/// The most pixels a GIF's logical screen, or any one of its frames, may
/// have. The GIF decoder holds a frame as four bytes a pixel and refuses
/// frames beyond this size itself; checking it first gives the right error.
pub const MAX_GIF_PIXELS: u64 = 12_000_000;

/// The most frames an animated GIF may have.
pub const MAX_FRAMES: u32 = 1_000;

/// The most pixels all the frames of an animation may have together (frames
/// times the logical screen): each frame is decoded onto the whole screen,
/// so this bounds the work an animation can ask for.
pub const MAX_ANIMATION_PIXELS: u64 = 200_000_000;

/// The most memory a decoder may allocate for one image, passed to the
/// `image` crate's decoders as their allocation limit.
pub const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;

/// Why an image was refused or could not be converted.
///
/// `Display` gives a sentence fit to show to the person who attached the
/// file; [`MediaError::code`] gives a stable code for clients and logs.
/// Suggested HTTP statuses: [`MediaError::NotAnImage`] `415`,
/// [`MediaError::TooLarge`] `413`, the others `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The content is not a JPEG, PNG or GIF, whatever its file name says.
    #[error("Only JPEG, PNG and GIF images can be attached")]
    NotAnImage,
    /// The image declares more pixels, frames or memory than the limits.
    #[error("{0}")]
    TooLarge(Oversize),
    /// The file starts like an image but is damaged or cut short.
    #[error("This image is damaged or incomplete and cannot be read")]
    Unreadable,
    /// No copy within the carrier's size limit could be made.
    #[error(
        "This image cannot be made small enough to send by MMS (at most {} KB)",
        max_bytes / 1024
    )]
    CannotFit {
        /// The size limit that was asked for, in bytes.
        max_bytes: usize,
    },
}

impl MediaError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::NotAnImage => "not_an_image",
            MediaError::TooLarge(_) => "image_too_large",
            MediaError::Unreadable => "image_unreadable",
            MediaError::CannotFit { .. } => "image_cannot_fit",
        }
    }
}

/// Which limit an image is over, for [`MediaError::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Oversize {
    /// The image, a GIF's screen, or one of its frames is too large.
    #[error(
        "This image is too large ({width} × {height} pixels); images of at most {} pixels a side and {} megapixels ({} for a GIF) can be attached",
        MAX_SIDE,
        MAX_PIXELS / 1_000_000,
        MAX_GIF_PIXELS / 1_000_000
    )]
    Dimensions { width: u32, height: u32 },
    /// The animation has too many frames, or too many pixels in all.
    #[error(
        "This animation is too large ({frames} frames of {width} × {height} pixels); animations of at most {} frames and {} megapixels in all can be attached",
        MAX_FRAMES,
        MAX_ANIMATION_PIXELS / 1_000_000
    )]
    Animation {
        frames: u32,
        width: u32,
        height: u32,
    },
    /// Decoding the image would need more memory than allowed.
    #[error("This image needs too much memory to be read")]
    Memory,
}

impl From<Oversize> for MediaError {
    fn from(oversize: Oversize) -> Self {
        MediaError::TooLarge(oversize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers move these into blocking tasks and share them across threads.
    #[test]
    fn the_public_types_can_cross_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<MediaStore>();
        shareable::<BucketStore>();
        shareable::<Content>();
        shareable::<UrlSigner>();
        shareable::<MediaId>();
        shareable::<CarrierCopy>();
        shareable::<ImageInfo>();
        shareable::<MediaError>();
        shareable::<SignatureError>();
    }
}
