//! Charts drawn with plotters, as SVG or PNG, from the reports' figures.
//!
//! Text is set in DejaVu Sans, bundled (see `fonts/`), so a PNG is the same
//! on every machine; an SVG names the same font and loads it from the
//! dashboard (`/static/DejaVuSans.ttf`) when opened on its own. Amounts are
//! drawn from the exact figures, converted to floating point only to place
//! them on an axis.

use std::sync::Once;

use chrono::NaiveDate;
use plotters::chart::SeriesLabelStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tally_domain::{Month, currency_symbol};
use tally_savings::{Payment, SavingsReport, Term};

use crate::burn::BurnReport;

/// The bundled font, regular and bold.
pub const FONT_REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
pub const FONT_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
const FAMILY: &str = "DejaVu Sans";

static FONTS: Once = Once::new();

fn fonts() {
    FONTS.call_once(|| {
        // The bundled bytes are valid TrueType (tested): registration cannot fail.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_REGULAR);
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, FONT_BOLD);
    });
}

/// SVG or PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Svg => "image/svg+xml",
            Self::Png => "image/png",
        }
    }
}

/// Pixels; 1200 x 600 unless asked otherwise, within 320..=2400 x 240..=1600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub const DEFAULT: Size = Size { width: 1200, height: 600 };

    pub fn new(width: u32, height: u32) -> Result<Self, ChartError> {
        if !(320..=2400).contains(&width) || !(240..=1600).contains(&height) {
            return Err(ChartError::Size(format!("{width}x{height} is outside 320..2400 x 240..1600 pixels")));
        }
        Ok(Self { width, height })
    }

    /// Text sized for a chart `base` px would suit at 1200 px wide. A small
    /// chart is shown shrunk to a phone's width (a 640 px image in about 360
    /// CSS px), so its text grows to stay readable there; a large one grows a little.
    /// How many value labels an axis `share` of the chart's height tall can
    /// hold without crowding at this size's text.
    fn value_labels(self, share: f64) -> usize {
        let tall = f64::from(self.height) * share;
        ((tall / (self.text(13.0) * 2.6)) as usize).clamp(3, 10)
    }

    fn text(self, base: f64) -> f64 {
        let w = f64::from(self.width);
        let factor = if w >= 1200.0 { (w / 1200.0).min(1.5).powf(0.35) } else { (1200.0 / w).min(2.0).powf(0.6) };
        (base * factor).round()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("chart size: {0}")]
    Size(String),
    #[error("nothing to draw: {0}")]
    Empty(String),
    #[error("drawing failed: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// A chart that can draw itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, size: Size) -> Result<(), ChartError>;
}

/// Renders `chart` as SVG or PNG bytes.
pub fn render(chart: &impl Chart, format: Format, size: Size) -> Result<Vec<u8>, ChartError> {
    fonts();
    let (w, h) = (size.width, size.height);
    match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                chart.draw(&root, size)?;
                root.present().map_err(draw_err)?;
            }
            // Name the bundled font so an SVG opened on its own renders like the PNG.
            let style = format!(
                "<style>@font-face{{font-family:'{FAMILY}';src:url('/static/DejaVuSans.ttf')}}@font-face{{font-family:'{FAMILY}';font-weight:bold;src:url('/static/DejaVuSans-Bold.ttf')}}</style>"
            );
            if let Some(i) = svg.find('>') {
                svg.insert_str(i + 1, &style);
            }
            Ok(svg.into_bytes())
        }
        Format::Png => {
            let mut pixels = vec![0u8; (w * h * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
                chart.draw(&root, size)?;
                root.present().map_err(draw_err)?;
            }
            let mut png = Vec::new();
            image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut png), &pixels, w, h, image::ColorType::Rgb8).map_err(draw_err)?;
            Ok(png)
        }
    }
}

const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 111, 235),
    RGBColor(230, 126, 34),
    RGBColor(46, 160, 67),
    RGBColor(198, 40, 40),
    RGBColor(142, 68, 173),
    RGBColor(22, 160, 133),
    RGBColor(241, 196, 15),
    RGBColor(127, 140, 141),
    RGBColor(52, 73, 94),
    RGBColor(211, 84, 0),
    RGBColor(93, 173, 226),
    RGBColor(175, 122, 197),
];
const INK: RGBColor = RGBColor(27, 36, 48);
const MUTED: RGBColor = RGBColor(91, 102, 117);
const COST: RGBColor = RGBColor(198, 40, 40);
const OTHER_COST: RGBColor = RGBColor(239, 154, 154);
const REVENUE: RGBColor = RGBColor(46, 160, 67);

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Axis labels: `$1.2k`, `$450`, `-$300`.
fn axis_money(v: f64, currency: &str) -> String {
    let s = currency_symbol(currency);
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    let body = if a >= 1_000_000.0 {
        format!("{:.1}M", a / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", a / 1000.0)
    } else if a >= 1000.0 {
        format!("{:.1}k", a / 1000.0)
    } else if a >= 10.0 || a == 0.0 {
        format!("{a:.0}")
    } else if a >= 1.0 {
        format!("{a:.2}")
    } else {
        // Unit costs: enough decimals that neighbouring ticks differ.
        let t = format!("{a:.4}");
        t.trim_end_matches('0').to_owned()
    };
    if s.is_empty() { format!("{sign}{body} {currency}") } else { format!("{sign}{s}{body}") }
}

/// The series legend, in the same box on every chart.
fn legend<'a, 'b, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    mut labels: SeriesLabelStyle<'a, 'b, DB, CT>,
    position: SeriesLabelPosition,
    font: FontDesc<'static>,
) -> Result<(), ChartError> {
    labels.position(position).background_style(WHITE.mix(0.85)).border_style(RGBColor(221, 227, 234)).label_font(font.color(&INK)).draw().map_err(draw_err)
}

/// Exact amounts in text, at the currency's minor units: `$1,234.56`, `1,235 JPY`.
pub fn money_text(d: Decimal, currency: &str) -> String {
    tally_domain::format_money(d, currency)
}

fn font(size: Size, px: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size.text(px), FontStyle::Normal)
}

/// The title's font: bold at `px`, smaller where needed so that the whole
/// title fits the chart's width (a phone's chart is narrow).
fn title_font(size: Size, px: f64, title: &str) -> FontDesc<'static> {
    let room = f64::from(size.width.saturating_sub(24));
    let mut pt = size.text(px);
    loop {
        let font = FontDesc::new(FontFamily::Name(FAMILY), pt, FontStyle::Bold);
        let fits = font.box_size(title).map_or(true, |(w, _)| f64::from(w) <= room);
        if fits || pt <= 9.0 {
            return font;
        }
        pt -= 1.0;
    }
}

/// A range with room above the largest value and below the smallest (and 0 in it).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.12;
    (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
}

fn legend_box(c: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled())
}

fn empty<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, size: Size, title: &str, message: &str) -> Result<(), ChartError> {
    root.fill(&WHITE).map_err(draw_err)?;
    root.draw(&Text::new(title.to_owned(), (20, 16), title_font(size, 20.0, title).color(&INK))).map_err(draw_err)?;
    root.draw(&Text::new(message.to_owned(), (20, 60), font(size, 15.0).color(&MUTED))).map_err(draw_err)?;
    Ok(())
}

// ---------------------------------------------------------------- burn

/// Costs and revenue by month, net burn, and the runway date.
#[derive(Debug)]
pub struct BurnChart<'a> {
    pub report: &'a BurnReport,
}

impl Chart for BurnChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, size: Size) -> Result<(), ChartError> {
        let r = self.report;
        let cur = r.currency.as_str();
        let title = "Burn versus revenue";
        if r.months.is_empty() {
            return empty(root, size, title, "No allocated month yet.");
        }
        root.fill(&WHITE).map_err(draw_err)?;
        let n = r.months.len();
        let (lo, hi) = span(r.months.iter().flat_map(|m| [f(m.total_costs), f(m.revenue), f(m.net_burn)]));
        // Headroom for the legend (four lines) above the bars and their labels,
        // whatever the size: it takes a larger share of a phone's chart.
        let legend_share = (4.0 * size.text(13.0) * 1.5 + 16.0) / (f64::from(size.height) * 0.78);
        let hi = hi + (hi - lo) * (legend_share / (1.0 - legend_share) + 0.08);
        let runway = match &r.runway {
            Some(rw) if rw.profitable => "Profitable: revenue covers the costs".to_owned(),
            Some(rw) => match (rw.months, rw.runs_out_on) {
                (Some(m), Some(d)) => format!("Runway {} months: cash runs out around {}", m.round_dp(1), d.format("%-d %b %Y")),
                _ => "Runway unknown".to_owned(),
            },
            None => "Runway: no cash balance set".to_owned(),
        };
        // On a phone the page's heading already says what the chart is: keep the runway.
        let caption = if size.width < 900 { runway } else { format!("{title} — {runway}") };
        let mut chart = ChartBuilder::on(root)
            .caption(&caption, title_font(size, 19.0, &caption).color(&INK))
            .margin(14)
            .x_label_area_size(size.text(34.0) as u32)
            .y_label_area_size(size.text(72.0) as u32)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
            .map_err(draw_err)?;
        let labels: Vec<String> = r.months.iter().map(|m| if m.complete { m.month.to_string() } else { format!("{} (to date)", m.month) }).collect();
        chart
            .configure_mesh()
            .y_labels(size.value_labels(0.75))
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() { labels[i as usize].clone() } else { String::new() }
            })
            .y_label_formatter(&|v| axis_money(*v, cur))
            .label_style(font(size, 13.0).color(&INK))
            .light_line_style(RGBColor(235, 238, 242))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(r.months.iter().enumerate().map(|(i, m)| Rectangle::new([(i as f64 - 0.36, 0.0), (i as f64 - 0.02, f(m.aws_cost))], COST.filled())))
            .map_err(draw_err)?
            .label("AWS cost")
            .legend(legend_box(COST));
        chart
            .draw_series(
                r.months
                    .iter()
                    .enumerate()
                    .map(|(i, m)| Rectangle::new([(i as f64 - 0.36, f(m.aws_cost)), (i as f64 - 0.02, f(m.total_costs))], OTHER_COST.filled())),
            )
            .map_err(draw_err)?
            .label("Other costs")
            .legend(legend_box(OTHER_COST));
        chart
            .draw_series(r.months.iter().enumerate().map(|(i, m)| Rectangle::new([(i as f64 + 0.02, 0.0), (i as f64 + 0.36, f(m.revenue))], REVENUE.filled())))
            .map_err(draw_err)?
            .label("Revenue")
            .legend(legend_box(REVENUE));
        let burn: Vec<(f64, f64)> = r.months.iter().enumerate().map(|(i, m)| (i as f64, f(m.net_burn))).collect();
        chart
            .draw_series(LineSeries::new(burn.clone(), INK.stroke_width(3)))
            .map_err(draw_err)?
            .label("Net burn (costs − revenue)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], INK.stroke_width(3)));
        chart.draw_series(burn.iter().map(|p| Circle::new(*p, 5, INK.filled()))).map_err(draw_err)?;
        chart
            .draw_series(r.months.iter().enumerate().map(|(i, m)| {
                Text::new(
                    money_text(m.net_burn, cur).split('.').next().unwrap_or_default().to_owned(),
                    (i as f64 + 0.06, f(m.net_burn) + (hi - lo) * 0.06),
                    font(size, 13.0).color(&INK),
                )
            }))
            .map_err(draw_err)?;
        legend(chart.configure_series_labels(), SeriesLabelPosition::UpperLeft, font(size, 13.0))?;
        Ok(())
    }
}

// ---------------------------------------------------------------- stacked bars

/// One part of a stacked bar: `label` (e.g. a tenant) x `series` (e.g. a pool).
#[derive(Debug, Clone, PartialEq)]
pub struct StackPart {
    pub label: String,
    pub series: String,
    pub value: Decimal,
}

/// Horizontal bars, one per label, stacked by series: the largest `top`
/// labels and "Other".
#[derive(Debug)]
pub struct StackedBars<'a> {
    pub title: String,
    pub currency: &'a str,
    pub parts: &'a [StackPart],
    pub top: usize,
}

impl Chart for StackedBars<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, size: Size) -> Result<(), ChartError> {
        let cur = self.currency;
        let mut totals: Vec<(String, Decimal)> = Vec::new();
        for p in self.parts {
            match totals.iter_mut().find(|(l, _)| *l == p.label) {
                Some(t) => t.1 += p.value,
                None => totals.push((p.label.clone(), p.value)),
            }
        }
        if totals.is_empty() {
            return empty(root, size, &self.title, "Nothing allocated in this period.");
        }
        totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let kept: Vec<String> = totals.iter().take(self.top).map(|(l, _)| l.clone()).collect();
        let other = totals.len() > self.top;
        let mut rows: Vec<String> = kept.clone();
        if other {
            rows.push(format!("Other ({})", totals.len() - self.top));
        }
        let row_of = |label: &str| kept.iter().position(|k| k == label).unwrap_or(rows.len() - 1);
        let mut series: Vec<(String, Decimal)> = Vec::new();
        for p in self.parts {
            match series.iter_mut().find(|(s, _)| *s == p.series) {
                Some(s) => s.1 += p.value,
                None => series.push((p.series.clone(), p.value)),
            }
        }
        series.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // values[row][series], and each row's exact total for its label.
        let mut values = vec![vec![0.0f64; series.len()]; rows.len()];
        let mut row_totals = vec![Decimal::ZERO; rows.len()];
        for p in self.parts {
            let s = series.iter().position(|(n, _)| *n == p.series).unwrap_or(0);
            values[row_of(&p.label)][s] += f(p.value);
            row_totals[row_of(&p.label)] += p.value;
        }
        let (lo, hi) = span(values.iter().flat_map(|r| [r.iter().filter(|v| **v > 0.0).sum::<f64>(), r.iter().filter(|v| **v < 0.0).sum::<f64>()]));
        root.fill(&WHITE).map_err(draw_err)?;
        let n = rows.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_font(size, 19.0, &self.title).color(&INK))
            .margin(14)
            .x_label_area_size(size.text(30.0) as u32)
            .y_label_area_size(size.text(150.0) as u32)
            .build_cartesian_2d(lo..hi, -0.5f64..(n as f64 - 0.5))
            .map_err(draw_err)?;
        let names = rows.clone();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n + 1)
            .y_label_formatter(&|y| {
                let i = y.round();
                // The largest at the top.
                if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() { names[names.len() - 1 - i as usize].clone() } else { String::new() }
            })
            .x_label_formatter(&|v| axis_money(*v, cur))
            .label_style(font(size, 13.0).color(&INK))
            .light_line_style(RGBColor(235, 238, 242))
            .draw()
            .map_err(draw_err)?;
        for (s, (name, _)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let bars: Vec<Rectangle<(f64, f64)>> = values
                .iter()
                .enumerate()
                .filter(|(_, r)| r[s] != 0.0)
                .map(|(row, r)| {
                    let y = (n - 1 - row) as f64;
                    let (pos_before, neg_before): (f64, f64) = (r[..s].iter().filter(|v| **v > 0.0).sum(), r[..s].iter().filter(|v| **v < 0.0).sum());
                    let (a, b) = if r[s] > 0.0 { (pos_before, pos_before + r[s]) } else { (neg_before + r[s], neg_before) };
                    Rectangle::new([(a, y - 0.36), (b, y + 0.36)], color.filled())
                })
                .collect();
            chart.draw_series(bars).map_err(draw_err)?.label(name.clone()).legend(legend_box(color));
        }
        chart
            .draw_series(values.iter().enumerate().map(|(row, r)| {
                let label = money_text(row_totals[row], cur);
                Text::new(label, (r.iter().filter(|v| **v > 0.0).sum::<f64>() + (hi - lo) * 0.005, (n - 1 - row) as f64 - 0.12), font(size, 12.0).color(&MUTED))
            }))
            .map_err(draw_err)?;
        legend(chart.configure_series_labels(), SeriesLabelPosition::LowerRight, font(size, 12.0))?;
        Ok(())
    }
}

// ---------------------------------------------------------------- daily areas

/// Cost per day, stacked by series (e.g. service): the largest `top` and "Other".
#[derive(Debug)]
pub struct DailyAreas<'a> {
    pub title: String,
    pub currency: &'a str,
    pub points: &'a [(NaiveDate, String, Decimal)],
    pub top: usize,
}

impl Chart for DailyAreas<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, size: Size) -> Result<(), ChartError> {
        let cur = self.currency;
        let mut days: Vec<NaiveDate> = self.points.iter().map(|p| p.0).collect();
        days.sort();
        days.dedup();
        if days.is_empty() {
            return empty(root, size, &self.title, "No daily costs in this window.");
        }
        let (first, last) = (days[0], *days.last().unwrap_or(&days[0]));
        let n = (last - first).num_days() as usize + 1;
        let mut totals: Vec<(String, Decimal)> = Vec::new();
        for p in self.points {
            match totals.iter_mut().find(|(s, _)| *s == p.1) {
                Some(t) => t.1 += p.2,
                None => totals.push((p.1.clone(), p.2)),
            }
        }
        totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut names: Vec<String> = totals.iter().take(self.top).map(|(s, _)| s.clone()).collect();
        if totals.len() > self.top {
            names.push("Other".into());
        }
        let mut v = vec![vec![0.0f64; n]; names.len()];
        for p in self.points {
            let s = names.iter().position(|x| *x == p.1).unwrap_or(names.len() - 1);
            v[s][(p.0 - first).num_days() as usize] += f(p.2);
        }
        // Stack upwards: cumulative sums, drawn from the top layer down.
        let mut cum = v.clone();
        for s in 1..cum.len() {
            let (below, above) = cum.split_at_mut(s);
            for (c, b) in above[0].iter_mut().zip(&below[s - 1]) {
                *c += b;
            }
        }
        let top_layer = cum.last().cloned().unwrap_or_default();
        let (lo, hi) = span(top_layer.iter().copied().chain(v.iter().flatten().copied()));
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, title_font(size, 19.0, &self.title).color(&INK))
            .margin(14)
            .x_label_area_size(size.text(34.0) as u32)
            .y_label_area_size(size.text(64.0) as u32)
            .build_cartesian_2d(0f64..(n.max(2) - 1) as f64, lo..hi)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .y_labels(size.value_labels(0.75))
            .x_labels(8.min(n))
            .x_label_formatter(&|x| (first + chrono::Duration::days(x.round() as i64)).format("%-d %b").to_string())
            .y_label_formatter(&|y| axis_money(*y, cur))
            .label_style(font(size, 13.0).color(&INK))
            .light_line_style(RGBColor(235, 238, 242))
            .draw()
            .map_err(draw_err)?;
        for s in (0..names.len()).rev() {
            let color = PALETTE[s % PALETTE.len()];
            let pts: Vec<(f64, f64)> = (0..n).map(|d| (d as f64, cum[s][d])).collect();
            chart
                .draw_series(AreaSeries::new(pts, 0.0, color.mix(0.85)).border_style(color.stroke_width(1)))
                .map_err(draw_err)?
                .label(names[s].clone())
                .legend(legend_box(color));
        }
        legend(chart.configure_series_labels(), SeriesLabelPosition::UpperLeft, font(size, 12.0))?;
        Ok(())
    }
}

// ---------------------------------------------------------------- one tenant

/// One month of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantMonth {
    pub month: Month,
    pub cost: Decimal,
    pub revenue: Decimal,
    pub margin_percent: Option<Decimal>,
    pub per_1000_requests: Option<Decimal>,
}

/// A tenant's cost and revenue by month with its margin, and its unit cost trend.
#[derive(Debug)]
pub struct TenantTrend<'a> {
    pub name: &'a str,
    pub currency: &'a str,
    pub months: &'a [TenantMonth],
}

impl Chart for TenantTrend<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, size: Size) -> Result<(), ChartError> {
        let cur = self.currency;
        let title = format!("{}: cost, revenue and margin; cost per 1,000 requests", self.name);
        if self.months.is_empty() {
            return empty(root, size, &title, "No allocated month yet.");
        }
        root.fill(&WHITE).map_err(draw_err)?;
        let n = self.months.len();
        let (upper, lower) = root.split_vertically((f64::from(size.height) * 0.62) as u32);
        let (lo, hi) = span(self.months.iter().flat_map(|m| [f(m.cost), f(m.revenue)]));
        let mut top = ChartBuilder::on(&upper)
            .caption(&title, title_font(size, 18.0, &title).color(&INK))
            .margin(12)
            .x_label_area_size(size.text(26.0) as u32)
            .y_label_area_size(size.text(72.0) as u32)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
            .map_err(draw_err)?;
        let labels: Vec<String> = self.months.iter().map(|m| m.month.to_string()).collect();
        let fmt = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() { labels[i as usize].clone() } else { String::new() }
        };
        top.configure_mesh()
            .y_labels(size.value_labels(0.45))
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&fmt)
            .y_label_formatter(&|v| axis_money(*v, cur))
            .label_style(font(size, 13.0).color(&INK))
            .light_line_style(RGBColor(235, 238, 242))
            .draw()
            .map_err(draw_err)?;
        top.draw_series(self.months.iter().enumerate().map(|(i, m)| Rectangle::new([(i as f64 - 0.34, 0.0), (i as f64 - 0.02, f(m.cost))], COST.filled())))
            .map_err(draw_err)?
            .label("Cost")
            .legend(legend_box(COST));
        top.draw_series(
            self.months.iter().enumerate().map(|(i, m)| Rectangle::new([(i as f64 + 0.02, 0.0), (i as f64 + 0.34, f(m.revenue))], REVENUE.filled())),
        )
        .map_err(draw_err)?
        .label("Revenue")
        .legend(legend_box(REVENUE));
        top.draw_series(self.months.iter().enumerate().map(|(i, m)| {
            let text = m.margin_percent.map(|p| format!("margin {}%", p.round_dp(0))).unwrap_or_else(|| "no revenue".into());
            let color = if m.margin_percent.is_some_and(|p| p >= Decimal::ZERO) { REVENUE } else { COST };
            Text::new(text, (i as f64 - 0.3, f(m.cost.max(m.revenue)) + (hi - lo) * 0.04), font(size, 13.0).color(&color))
        }))
        .map_err(draw_err)?;
        legend(top.configure_series_labels(), SeriesLabelPosition::UpperRight, font(size, 12.0))?;
        let unit: Vec<(f64, f64)> = self.months.iter().enumerate().filter_map(|(i, m)| m.per_1000_requests.map(|u| (i as f64, f(u)))).collect();
        let (ulo, uhi) = span(unit.iter().map(|p| p.1));
        let mut bottom = ChartBuilder::on(&lower)
            .margin(12)
            .x_label_area_size(size.text(26.0) as u32)
            .y_label_area_size(size.text(72.0) as u32)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), ulo..uhi)
            .map_err(draw_err)?;
        bottom
            .configure_mesh()
            .y_labels(size.value_labels(0.25))
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&fmt)
            .y_label_formatter(&|v| axis_money(*v, cur))
            .y_desc("per 1,000 requests")
            .label_style(font(size, 13.0).color(&INK))
            .axis_desc_style(font(size, 12.0).color(&MUTED))
            .light_line_style(RGBColor(235, 238, 242))
            .draw()
            .map_err(draw_err)?;
        if unit.is_empty() {
            lower.draw(&Text::new("No request counts collected for this tenant.".to_owned(), (90, 30), font(size, 13.0).color(&MUTED))).map_err(draw_err)?;
        } else {
            bottom.draw_series(LineSeries::new(unit.clone(), PALETTE[0].stroke_width(3))).map_err(draw_err)?;
            bottom.draw_series(unit.iter().map(|p| Circle::new(*p, 5, PALETTE[0].filled()))).map_err(draw_err)?;
            bottom
                .draw_series(self.months.iter().enumerate().filter_map(|(i, m)| {
                    m.per_1000_requests
                        .map(|u| Text::new(format!("{}{}", currency_symbol(cur), u.round_dp(4)), (i as f64 + 0.04, f(u)), font(size, 12.0).color(&INK)))
                }))
                .map_err(draw_err)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- savings

/// Cumulative cost over a term: on demand against each payment option,
/// with each option's break-even month marked.
#[derive(Debug)]
pub struct SavingsCurves<'a> {
    pub report: &'a SavingsReport,
    pub term: Term,
    pub currency: &'a str,
}

/// An option's cash flows over all families: upfront, per month, and what the
/// covered usage costs per month on demand.
pub fn option_flows(report: &SavingsReport, term: Term, payment: Payment) -> Option<(Decimal, Decimal, Decimal)> {
    let mut any = false;
    let (mut up, mut rec, mut od) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for fam in &report.projection.families {
        if let Some(o) = fam.options.iter().find(|o| o.term == term && o.payment == payment) {
            any = true;
            up += o.upfront;
            rec += o.recurring_monthly;
            od += o.on_demand_monthly;
        }
    }
    any.then_some((up, rec, od))
}

impl Chart for SavingsCurves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, size: Size) -> Result<(), ChartError> {
        let cur = self.currency;
        let months = self.term.months();
        let title = format!("Reserving for {}: cumulative cost against staying on demand", if self.term == Term::OneYear { "1 year" } else { "3 years" });
        let flows: Vec<(Payment, (Decimal, Decimal, Decimal))> =
            Payment::ALL.iter().filter_map(|p| option_flows(self.report, self.term, *p).map(|x| (*p, x))).collect();
        // On demand: what the usage the reservations would cover costs without them.
        let od = flows.iter().map(|(_, (_, _, od))| *od).max().unwrap_or_default();
        if flows.is_empty() || od.is_zero() {
            return empty(root, size, &title, "Nothing steady enough to reserve in the look-back window.");
        }
        let hi = flows.iter().map(|(_, (u, r, _))| f(*u + *r * Decimal::from(months))).fold(f(od * Decimal::from(months)), f64::max) * 1.1;
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&title, title_font(size, 18.0, &title).color(&INK))
            .margin(14)
            .x_label_area_size(size.text(34.0) as u32)
            .y_label_area_size(size.text(72.0) as u32)
            .build_cartesian_2d(0f64..f64::from(months), 0f64..hi)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .y_labels(size.value_labels(0.75))
            .x_labels(if months > 12 { 13 } else { 7 })
            .x_label_formatter(&|x| format!("{}", x.round()))
            .x_desc("months after buying")
            .axis_desc_style(font(size, 12.0).color(&MUTED))
            .y_label_formatter(&|v| axis_money(*v, cur))
            .label_style(font(size, 13.0).color(&INK))
            .light_line_style(RGBColor(235, 238, 242))
            .draw()
            .map_err(draw_err)?;
        let od_line: Vec<(f64, f64)> = (0..=months).map(|m| (f64::from(m), f(od) * f64::from(m))).collect();
        chart
            .draw_series(LineSeries::new(od_line, INK.stroke_width(3)))
            .map_err(draw_err)?
            .label(format!("Same capacity on demand: {} a month", money_text(od, cur)))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], INK.stroke_width(3)));
        for (i, (payment, (up, rec, _))) in flows.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = (0..=months).map(|m| (f64::from(m), f(*up) + f(*rec) * f64::from(m))).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(3)))
                .map_err(draw_err)?
                .label(format!("{}: {} upfront + {} a month", payment.label(), money_text(*up, cur), money_text(*rec, cur)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(3)));
            // Break-even: where the option's cumulative cost meets on demand's.
            let gain = od - *rec;
            if gain > Decimal::ZERO {
                let m = f(*up / gain);
                if m <= f64::from(months) {
                    let y = f(od) * m;
                    chart.draw_series(std::iter::once(Circle::new((m, y), 7, color.filled()))).map_err(draw_err)?;
                    let text = if up.is_zero() { "saves from month 1".to_owned() } else { format!("pays back in month {}", m.ceil()) };
                    chart
                        .draw_series(std::iter::once(Text::new(text, (m + f64::from(months) * 0.012, y + hi * 0.05), font(size, 12.0).color(&color))))
                        .map_err(draw_err)?;
                }
            }
        }
        legend(chart.configure_series_labels(), SeriesLabelPosition::UpperLeft, font(size, 12.0))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_fonts_are_valid_truetype() {
        assert!(plotters::style::register_font("test-regular", FontStyle::Normal, FONT_REGULAR).is_ok());
        assert!(plotters::style::register_font("test-bold", FontStyle::Bold, FONT_BOLD).is_ok());
    }

    #[test]
    fn axis_labels_are_short_money() {
        assert_eq!(axis_money(1250.0, "USD"), "$1.2k");
        assert_eq!(axis_money(25000.0, "USD"), "$25k");
        assert_eq!(axis_money(-300.0, "USD"), "-$300");
        assert_eq!(axis_money(2.5, "USD"), "$2.50");
        assert_eq!(axis_money(0.035, "USD"), "$0.035");
        assert_eq!(axis_money(450.0, "JPY"), "450 JPY");
    }

    #[test]
    fn sizes_outside_the_limits_are_refused() {
        assert!(Size::new(100, 600).is_err());
        assert!(Size::new(1200, 600).is_ok());
    }
}
