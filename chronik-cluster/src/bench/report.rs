//! What a scenario measured: its settings and its figures in named sections (one per
//! driver, the ratio between them, one per sweep point), printed as a table and as one
//! JSON object.

use serde_json::{Map, Value};

/// Settings and figures of one scenario run. Every figure's name carries its unit
/// (`records_per_sec`, `p99_ms`, `cpu_percent`, ...).
#[derive(Debug, Clone)]
pub struct Report {
    scenario: &'static str,
    settings: Map<String, Value>,
    sections: Vec<(String, Vec<(String, f64)>)>,
    notes: Vec<String>,
}

impl Report {
    /// An empty report of `scenario`.
    pub fn new(scenario: &'static str) -> Report {
        Report {
            scenario,
            settings: Map::new(),
            sections: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a setting that produced the figures.
    pub fn setting(&mut self, name: &str, value: impl Into<Value>) {
        self.settings.insert(name.to_owned(), value.into());
    }

    /// Records `value` as figure `name` of `section` (created on first use).
    pub fn add(&mut self, section: &str, name: &str, value: f64) {
        let figures = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => &mut self.sections[i].1,
            None => {
                self.sections.push((section.to_owned(), Vec::new()));
                let last = self.sections.len() - 1;
                &mut self.sections[last].1
            }
        };
        match figures.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => figures.push((name.to_owned(), value)),
        }
    }

    /// The figures of one section (empty if none).
    pub fn section(&self, section: &str) -> Vec<(String, f64)> {
        self.sections
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, f)| f.clone())
            .unwrap_or_default()
    }

    /// One figure.
    pub fn get(&self, section: &str, name: &str) -> Option<f64> {
        self.section(section)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Adds section `ratio_{a}_over_{b}` with `a / b` for each of `names` both have
    /// (a zero denominator gives no ratio).
    pub fn ratios(&mut self, a: &str, b: &str, names: &[&str]) {
        let section = format!("ratio_{a}_over_{b}");
        for name in names {
            if let (Some(x), Some(y)) = (self.get(a, name), self.get(b, name)) {
                if y != 0.0 {
                    self.add(&section, name, x / y);
                }
            }
        }
    }

    /// A line printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The table: one row per figure, one column per section.
    pub fn table(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for (_, figures) in &self.sections {
            for (name, _) in figures {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        let mut header = vec!["figure".to_owned()];
        header.extend(self.sections.iter().map(|(s, _)| s.clone()));
        let mut rows = vec![header];
        for name in names {
            let mut row = vec![name.to_owned()];
            for (section, _) in &self.sections {
                row.push(self.get(section, name).map_or("-".to_owned(), format_value));
            }
            rows.push(row);
        }
        let columns = rows.first().map_or(0, Vec::len);
        let widths: Vec<usize> = (0..columns)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        let mut out = format!("== bench {} ==\n", self.scenario);
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("settings: {}\n", settings.join(" ")));
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| match c {
                    0 => format!("{cell:<w$}", w = widths[c]),
                    _ => format!("{cell:>w$}", w = widths[c]),
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        for note in &self.notes {
            out.push_str(note);
            out.push('\n');
        }
        out
    }

    /// One JSON object: `scenario`, `settings`, and one object per section.
    pub fn json(&self) -> String {
        let mut object = Map::new();
        object.insert("scenario".to_owned(), Value::from(self.scenario));
        object.insert("settings".to_owned(), Value::Object(self.settings.clone()));
        for (section, figures) in &self.sections {
            let mut values = Map::new();
            for (name, value) in figures {
                let value = serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number);
                values.insert(name.clone(), value);
            }
            object.insert(section.clone(), Value::Object(values));
        }
        Value::Object(object).to_string()
    }
}

/// Large numbers with thousands separators, small ones with 3 significant digits.
fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let digits = format!("{:.0}", magnitude);
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if value < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_hold_every_figure_and_the_ratio() {
        let mut report = Report::new("produce");
        report.setting("partitions", 64);
        report.add("ours", "records_per_sec", 1_234_567.0);
        report.add("naive", "records_per_sec", 1000.0);
        report.add("ours", "p99_ms", 3.25);
        report.ratios("ours", "naive", &["records_per_sec", "p99_ms"]);
        let table = report.table();
        assert!(table.contains("1,234,567"), "{table}");
        assert!(table.contains("3.25"), "{table}");
        let json: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["settings"]["partitions"], 64);
        assert_eq!(json["ratio_ours_over_naive"]["records_per_sec"], 1234.567);
        assert!(json["ratio_ours_over_naive"].get("p99_ms").is_none());
    }

    #[test]
    fn values_format_for_people() {
        assert_eq!(format_value(1_000_000.0), "1,000,000");
        assert_eq!(format_value(999.4), "999");
        assert_eq!(format_value(12.345), "12.3");
        assert_eq!(format_value(0.1234), "0.123");
        assert_eq!(format_value(-2500.0), "-2,500");
    }
}
