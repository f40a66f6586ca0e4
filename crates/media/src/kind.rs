//! What kind of image a file is, judged by its first bytes.

use crate::MediaError;

/// The image formats that can be attached to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
}

impl ImageKind {
    /// The MIME type, as sent in `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::Gif => "gif",
        }
    }

    pub(crate) fn format(self) -> image::ImageFormat {
        match self {
            ImageKind::Jpeg => image::ImageFormat::Jpeg,
            ImageKind::Png => image::ImageFormat::Png,
            ImageKind::Gif => image::ImageFormat::Gif,
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
// Every JPEG starts with a start-of-image marker followed by another marker.
const JPEG_SIGNATURE: &[u8] = b"\xff\xd8\xff";

/// Tells a JPEG, PNG or GIF apart by its magic bytes.
///
/// The file name and any declared content type are never consulted: a text
/// file renamed `photo.jpg`, a WebP, an SVG or a PDF is
/// [`MediaError::NotAnImage`]. Only the signature is checked; whether the
/// rest of the file is sound is for [`inspect`](crate::inspect) and the
/// decoders to find out.
pub fn sniff(bytes: &[u8]) -> Result<ImageKind, MediaError> {
    if bytes.starts_with(JPEG_SIGNATURE) {
        Ok(ImageKind::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Ok(ImageKind::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Ok(ImageKind::Gif)
    } else {
        Err(MediaError::NotAnImage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_three_formats_by_their_signatures() {
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Ok(ImageKind::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Ok(ImageKind::Png));
        assert_eq!(sniff(b"GIF87a\x01\0\x01\0"), Ok(ImageKind::Gif));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Ok(ImageKind::Gif));
    }

    #[test]
    fn anything_else_is_not_an_image() {
        for bytes in [
            &b""[..],
            b"hello, this is a text file named photo.jpg\n",
            b"RIFF\x24\0\0\0WEBPVP8 ",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"\xff\xd8",
            b"\x89PNG\r\n",
            b"GIF88a",
            b"BM\x3a\0\0\0",
        ] {
            assert_eq!(sniff(bytes), Err(MediaError::NotAnImage), "{bytes:?}");
        }
    }
}
