//! What an artwork file's first bytes say it is, checked against the type its name gives.
//! Written out rather than taken from a detection crate: the types TOT takes are few, and
//! some of them (Illustrator, EPS, SVG) are not known to one by their bytes.

/// The media type of a file of this extension (lower case, no dot), when cport knows it.
pub fn media_type_of(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "pdf" => "application/pdf",
        "ai" => "application/illustrator",
        "eps" => "application/postscript",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        "psd" => "image/vnd.adobe.photoshop",
        "zip" => "application/zip",
        _ => return None,
    })
}

/// Whether `bytes` begin as a file of extension `ext` does; `None` for an extension whose
/// content cport does not know (it is taken as named).
pub fn content_matches(ext: &str, bytes: &[u8]) -> Option<bool> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    // PDF readers find the header anywhere in the first kilobyte.
    let pdf = || bytes[..bytes.len().min(1024)].windows(5).any(|w| w == b"%PDF-");
    let postscript = || starts(b"%!PS") || starts(&[0xC5, 0xD0, 0xD3, 0xC6]);
    Some(match ext {
        "pdf" => pdf(),
        // Illustrator files are PDF inside since version 9; older ones PostScript.
        "ai" => pdf() || postscript(),
        "eps" => postscript(),
        "svg" => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
            head.contains("<svg")
        }
        "png" => starts(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => starts(&[0xFF, 0xD8, 0xFF]),
        "gif" => starts(b"GIF87a") || starts(b"GIF89a"),
        "tif" | "tiff" => starts(b"II*\0") || starts(b"MM\0*"),
        "psd" => starts(b"8BPS"),
        "zip" => starts(b"PK\x03\x04") || starts(b"PK\x05\x06"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::content_matches;

    #[test]
    fn a_file_is_what_its_first_bytes_say() {
        assert_eq!(content_matches("pdf", b"%PDF-1.7\n..."), Some(true));
        assert_eq!(content_matches("pdf", b"\xef\xbb\xbf\n%PDF-1.4"), Some(true), "a header after a few bytes");
        assert_eq!(content_matches("pdf", b"MZ\x90\x00 a program"), Some(false));
        assert_eq!(content_matches("ai", b"%!PS-Adobe-3.0"), Some(true));
        assert_eq!(content_matches("svg", b"<?xml version=\"1.0\"?>\n<SVG xmlns=\"x\">"), Some(true));
        assert_eq!(content_matches("svg", b"<html>"), Some(false));
        assert_eq!(content_matches("png", b"\x89PNG\r\n\x1a\n...."), Some(true));
        assert_eq!(content_matches("jpg", b"\x89PNG\r\n\x1a\n...."), Some(false));
        assert_eq!(content_matches("cdr", b"anything"), None);
    }
}
