//! Text for bitmap charts, laid out with each glyph's side bearings.
//!
//! plotters 0.3.7 draws ab_glyph text placing every glyph's ink at the pen
//! position, ignoring its left side bearing, so letters with wide bearings
//! ("m", "l") crowd or leave gaps. [`GlyphText`] wraps a backend and draws
//! text itself with ab_glyph, where each outlined glyph already sits at its
//! own position; every other drawing call goes straight to the wrapped
//! backend.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// A backend whose text is drawn by ab_glyph from one font.
pub(crate) struct GlyphText<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B> GlyphText<B> {
    pub(crate) fn new(inner: B, font: FontRef<'static>) -> Self {
        GlyphText { inner, font }
    }

    /// Pen positions of `text`'s glyphs at `size` pixels per line, the
    /// width of the whole run, and the ascent and line height.
    fn layout(&self, text: &str, size: f64) -> Layout {
        let scaled = self.font.as_scaled(PxScale::from(size as f32));
        let mut pen = 0.0f32;
        let mut previous = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(prev) = previous {
                pen += scaled.kern(prev, id);
            }
            glyphs.push((id, pen));
            pen += scaled.h_advance(id);
            previous = Some(id);
        }
        Layout {
            glyphs,
            width: pen.ceil() as i32,
            ascent: scaled.ascent(),
            height: (scaled.ascent() - scaled.descent()).ceil() as i32,
        }
    }
}

struct Layout {
    glyphs: Vec<(ab_glyph::GlyphId, f32)>,
    width: i32,
    ascent: f32,
    height: i32,
}

impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (width, height): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, (width, height), src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let layout = self.layout(text, style.size());
        Ok((layout.width.max(0) as u32, layout.height.max(0) as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let layout = self.layout(text, style.size());
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -layout.width,
            HPos::Center => -layout.width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -layout.height / 2,
            VPos::Bottom => -layout.height,
        };
        let transform = style.transform();
        let scale = PxScale::from(style.size() as f32);
        let (width, height) = self.get_size();
        // Coverage is collected first: the outline's callback cannot
        // return the backend's errors.
        let mut pixels = Vec::new();
        for &(id, x) in &layout.glyphs {
            let glyph = id.with_scale_and_position(scale, point(x, layout.ascent));
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let (left, top) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|gx, gy, coverage| {
                if coverage > 0.0 {
                    pixels.push((left + gx as i32, top + gy as i32, coverage));
                }
            });
        }
        for (x, y, coverage) in pixels {
            let (x, y) = transform.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && x < width as i32 && y < height as i32 {
                let shade = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                self.inner.draw_pixel((x, y), shade)?;
            }
        }
        Ok(())
    }
}
