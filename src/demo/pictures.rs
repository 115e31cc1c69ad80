//! The demo's pictures: visuals, placements, stock, process, delivery signatures and receipt
//! checks, drawn as small SVGs so the repository holds no binary files.

use std::path::{Path, PathBuf};

fn tee_svg(colour: &str, ink: &str, label: &str, sub: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="480" height="480" viewBox="0 0 480 480">
<rect width="480" height="480" fill="#f4f4f2"/>
<path d="M170 60 L120 80 L40 150 L85 205 L130 170 L130 430 L350 430 L350 170 L395 205 L440 150 L360 80 L310 60 Q240 110 170 60 Z" fill="{colour}" stroke="#333" stroke-width="3"/>
<circle cx="240" cy="215" r="62" fill="none" stroke="{ink}" stroke-width="8"/>
<text x="240" y="226" font-family="Helvetica, Arial, sans-serif" font-size="30" font-weight="bold" fill="{ink}" text-anchor="middle">{label}</text>
<text x="240" y="320" font-family="Helvetica, Arial, sans-serif" font-size="18" fill="{ink}" text-anchor="middle">{sub}</text>
</svg>
"##
    )
}

fn placement_svg(colour: &str, x: u32, y: u32, w: u32, h: u32, note: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="480" height="480" viewBox="0 0 480 480">
<rect width="480" height="480" fill="#ffffff"/>
<path d="M170 60 L120 80 L40 150 L85 205 L130 170 L130 430 L350 430 L350 170 L395 205 L440 150 L360 80 L310 60 Q240 110 170 60 Z" fill="{colour}" stroke="#333" stroke-width="2"/>
<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="#d0021b" stroke-width="3" stroke-dasharray="8 5"/>
<text x="240" y="465" font-family="Helvetica, Arial, sans-serif" font-size="16" fill="#333" text-anchor="middle">{note}</text>
</svg>
"##
    )
}

fn signature_svg(name: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="360" height="120" viewBox="0 0 360 120">
<rect width="360" height="120" fill="#fff"/>
<path d="M20 80 C 50 20, 70 110, 100 60 S 150 30, 170 75 S 220 100, 250 50 S 310 70, 340 40" fill="none" stroke="#1a237e" stroke-width="3"/>
<line x1="20" y1="100" x2="340" y2="100" stroke="#999"/>
<text x="20" y="115" font-family="Helvetica, Arial, sans-serif" font-size="11" fill="#666">Signed: {name}</text>
</svg>
"##
    )
}

/// Writes the demo pictures under `data_dir/media`; returns how many.
pub fn write_media(data_dir: &Path) -> std::io::Result<usize> {
    let media = data_dir.join("media");
    let files: Vec<(PathBuf, String)> = vec![
        (media.join("visuals/V-1001.svg"), tee_svg("#1f3a5f", "#f2c14e", "HARBOUR", "Left chest, 2 spot colours")),
        (
            media.join("visuals/V-1001-placement.svg"),
            placement_svg("#1f3a5f", 270, 150, 70, 70, "Left chest, 90 mm wide"),
        ),
        (media.join("visuals/V-1002.svg"), tee_svg("#f2efe6", "#6b3e26", "BARISTA", "Full back, 1 colour")),
        (
            media.join("visuals/V-1002-placement.svg"),
            placement_svg("#f2efe6", 160, 130, 160, 200, "Full back, 280 mm wide"),
        ),
        (media.join("visuals/V-1003.svg"), tee_svg("#c62828", "#ffffff", "FELLSIDE", "10K 2027, front")),
        (
            media.join("visuals/V-1003-placement.svg"),
            placement_svg("#c62828", 170, 140, 140, 120, "Full front, 250 mm wide"),
        ),
        (media.join("visuals/V-1004.svg"), tee_svg("#2e7d32", "#ffffff", "CREW", "Bright Sparks crew, back")),
        (media.join("visuals/V-1005.svg"), tee_svg("#222222", "#00bcd4", "SPARKS", "Embroidered cap front")),
        // The pictures of examples/visuals.json, so PUTting it against the demo shows them.
        (media.join("visuals/V-1006.svg"), tee_svg("#5d4037", "#f2c14e", "HC", "Apron bib, 1 colour")),
        (
            media.join("visuals/V-1006-placement.svg"),
            placement_svg("#5d4037", 200, 150, 80, 80, "Centre chest, 100 mm wide"),
        ),
        (media.join("stock/SKU-HC-TEE-NAVY.svg"), tee_svg("#1f3a5f", "#f2c14e", "HARBOUR", "Staff tee, navy")),
        (media.join("stock/SKU-HC-APRON.svg"), tee_svg("#5d4037", "#f2c14e", "HC", "Barista apron")),
        (media.join("stock/SKU-HC-TOTE.svg"), tee_svg("#efe6d2", "#1f3a5f", "HARBOUR", "Tote bag")),
        (media.join("stock/SKU-FS-VEST.svg"), tee_svg("#c62828", "#ffffff", "FELLSIDE", "Club vest")),
        (
            media.join("process/J-3001-front.svg"),
            placement_svg("#1f3a5f", 270, 150, 70, 70, "Process: screen print, left chest"),
        ),
        (media.join("pod/D-2001.svg"), signature_svg("K. Morgan")),
        (media.join("pod/D-2002.svg"), signature_svg("R. Ahmed")),
        (media.join("receipts/PO-5001-1.svg"), tee_svg("#9e9e9e", "#333333", "CHECKED", "12 outers, sealed")),
    ];
    for (path, body) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, body)?;
    }
    Ok(files.len())
}
