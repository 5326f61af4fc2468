//! The WhatsApp linking QR code as SVG markup the webview inserts as is. Drawn here so the
//! front end needs no QR library and no remote content.

use qrcode::QrCode;
use qrcode::render::svg;

/// `None` when the payload cannot be encoded (never seen with WhatsApp's ~240-byte codes).
pub fn svg(payload: &str) -> Option<String> {
    let code = QrCode::new(payload.as_bytes()).ok()?;
    let markup = code
        .render::<svg::Color<'_>>()
        .min_dimensions(264, 264)
        .dark_color(svg::Color("#111b21"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // The XML declaration means nothing inside an HTML document: keep the <svg> element only.
    let start = markup.find("<svg")?;
    Some(markup[start..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_standalone_svg_without_scripts_or_styles() {
        let markup = svg("2@abcdef,ghijkl,mnopqr,stuvwx").expect("encodable");
        assert!(markup.contains("<svg"), "{markup}");
        // The CSP forbids inline styles and scripts: the markup must need neither.
        assert!(!markup.contains("<script"));
        assert!(!markup.contains("style="));
    }
}
