//! Prometheus' text exposition format, as Traefik serves it on `/metrics`: one sample per line,
//! `name{label="value",…} value [timestamp]`, comments and blank lines skipped. Only the
//! metrics asked for are kept, so a large exposition costs no more memory than those.

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written; values unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }

    /// The series this sample belongs to, as one string: its name and labels.
    pub fn series(&self) -> String {
        let mut key = self.name.clone();
        for (name, value) in &self.labels {
            key.push('\0');
            key.push_str(name);
            key.push('=');
            key.push_str(value);
        }
        key
    }
}

/// The samples of the metrics named in `wanted`; lines that do not parse are skipped (a
/// metric of a newer Traefik in a shape this does not know must not hide the others).
pub fn parse(text: &str, wanted: &[&str]) -> Vec<Sample> {
    text.lines()
        .filter(|line| {
            let line = line.trim_start();
            !line.is_empty() && !line.starts_with('#')
        })
        .filter(|line| {
            let name = line.trim_start().split(['{', ' ']).next().unwrap_or("");
            wanted.contains(&name)
        })
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
    })
}

/// `a="x",b="y"}` → the labels and what follows the closing brace.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = text.split_once('=')?;
        let quoted = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next()? {
                (at, '"') => break at,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.push((name.trim().to_owned(), value));
        text = &quoted[end + 1..];
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok().filter(|value: &f64| !value.is_nan()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP traefik_service_requests_total How many HTTP requests processed on a service.
# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="paas-hello@docker"} 12
traefik_service_requests_total{code="503",method="GET",protocol="http",service="paas-hello@docker"} 1 1700000000000
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="paas-hello@docker",le="0.1"} 10
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="paas-hello@docker",le="+Inf"} 12
traefik_config_reloads_total 3
go_gc_duration_seconds{quantile="0.5"} NaN
"#;

    #[test]
    fn samples_of_the_wanted_metrics_are_read_with_their_labels() {
        let samples = parse(
            EXPOSITION,
            &[
                "traefik_service_requests_total",
                "traefik_service_request_duration_seconds_bucket",
            ],
        );
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(samples[0].label("service"), Some("paas-hello@docker"));
        assert_eq!(samples[1].label("code"), Some("503"));
        assert_eq!(samples[1].value, 1.0, "the timestamp is not the value");
        assert_eq!(samples[3].label("le"), Some("+Inf"));
        assert_eq!(samples[3].value, 12.0);
        assert_ne!(samples[2].series(), samples[3].series());
    }

    #[test]
    fn labels_without_braces_escapes_and_special_values() {
        let samples = parse(
            "traefik_config_reloads_total 3\n",
            &["traefik_config_reloads_total"],
        );
        assert_eq!(samples[0].labels, []);
        let escaped = parse_line(r#"m{a="x\"y\\z\n",b="",} +Inf"#).unwrap();
        assert_eq!(
            escaped.labels,
            [
                ("a".into(), "x\"y\\z\n".into()),
                ("b".into(), String::new())
            ]
        );
        assert_eq!(escaped.value, f64::INFINITY);
        assert_eq!(parse_line("m NaN"), None);
    }

    #[test]
    fn broken_lines_are_skipped() {
        for broken in [r#"m{a="x} 1"#, r#"m{a=x} 1"#, "m{a=\"x\"}", "m one", "m{"] {
            assert_eq!(parse(broken, &["m"]), [], "{broken:?}");
        }
        assert_eq!(parse("other 1\nm 2\n", &["m"]).len(), 1);
    }
}
