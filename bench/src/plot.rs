//! SVG plots of the results, with plotters.

use std::path::Path;

use plotters::prelude::*;

type Res = Result<(), Box<dyn std::error::Error>>;

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Horizontal bars, one per `(label, value)`, on a log scale.
pub fn bars(path: &Path, title: &str, unit: &str, rows: &[(String, f64)]) -> Res {
    let height = 80 + 30 * rows.len() as u32;
    let root = SVGBackend::new(path, (820, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = rows.iter().map(|r| r.1).fold(1.0, f64::max) * 2.0;
    let min = rows
        .iter()
        .map(|r| r.1)
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
        / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(170)
        .build_cartesian_2d((min..max).log_scale(), 0..rows.len())?;
    chart
        .configure_mesh()
        .x_desc(unit)
        .y_labels(rows.len())
        .y_label_formatter(&|i| rows.get(*i).map(|r| r.0.clone()).unwrap_or_default())
        .disable_y_mesh()
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
        Rectangle::new(
            [(min, i), (*v, i + 1)],
            COLORS[i % COLORS.len()].mix(0.7).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// One line per series of `(x, y)` points; log-scaled y.
pub fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Res {
    let root = SVGBackend::new(path, (820, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = series.iter().flat_map(|s| s.1.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, 1.0f64);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let y_min = (y_min / 2.0).max(1e-3);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max * 1.05, (y_min..y_max * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    for (i, (label, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
