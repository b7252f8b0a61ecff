//! SVG plots of sweeps (plotters, SVG backend).

use std::path::Path;

use plotters::prelude::*;

use super::BenchError;

/// One point of the partitions sweep.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Partitions.
    pub partitions: u32,
    /// Achieved records/s.
    pub records_per_sec: f64,
    /// Latency p50, ms.
    pub p50_ms: f64,
    /// Latency p99, ms.
    pub p99_ms: f64,
}

/// Draws achieved throughput (top) and latency p50/p99 (bottom) against the partition
/// count (log scale) at `offered` records/s into `path`.
pub fn sweep(path: &Path, points: &[Point], offered: f64) -> Result<(), BenchError> {
    draw(path, points, offered).map_err(|e| BenchError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn draw(
    path: &Path,
    points: &[Point],
    offered: f64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let root = SVGBackend::new(path, (800, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
    let max_x = points
        .iter()
        .map(|p| f64::from(p.partitions))
        .fold(2.0, f64::max)
        * 2.0;
    let x = |p: &Point| f64::from(p.partitions);
    let max_rate = points
        .iter()
        .map(|p| p.records_per_sec)
        .fold(offered, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("produce: records/s at {offered:.0} records/s offered"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(80)
        .build_cartesian_2d((0.5f64..max_x).log_scale(), 0f64..max_rate.max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("partitions")
        .y_desc("records/s")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (x(p), p.records_per_sec)),
            &BLUE,
        ))?
        .label("achieved")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(
        points
            .iter()
            .map(|p| Circle::new((x(p), p.records_per_sec), 4, BLUE.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(
            [(0.5, offered), (max_x, offered)],
            BLACK.mix(0.4),
        ))?
        .label("offered")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    chart.configure_series_labels().border_style(BLACK).draw()?;

    let max_ms = points.iter().map(|p| p.p99_ms).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&bottom)
        .caption("produce latency (ms)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(80)
        .build_cartesian_2d((0.5f64..max_x).log_scale(), 0f64..max_ms)?;
    chart
        .configure_mesh()
        .x_desc("partitions")
        .y_desc("ms")
        .draw()?;
    for (label, color, value) in [
        ("p50", GREEN, (|p: &Point| p.p50_ms) as fn(&Point) -> f64),
        ("p99", RED, |p: &Point| p.p99_ms),
    ] {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (x(p), value(p))),
                &color,
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((x(p), value(p)), 4, color.filled())),
        )?;
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_both_charts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.svg");
        let points = [1u32, 64, 1024].map(|partitions| Point {
            partitions,
            records_per_sec: 90_000.0,
            p50_ms: 2.0,
            p99_ms: 7.5,
        });
        sweep(&path, &points, 100_000.0).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("records/s") && svg.contains("p99"));
    }
}
