//! How numbers read on screen and in logs: durations, time left, digit groups, byte sizes,
//! iterations on an axis.

/// `1h02m03s`, `4m05s`, `12s`; `-` when unknown.
pub fn secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// Time left, to the precision an estimate has, in at most six characters up to 99 days: `4m05s`,
/// `4h28m`, `2d13h`; `-` when unknown.
pub fn eta(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    match (s / 86_400, (s / 3600) % 24, (s / 60) % 60) {
        (0, 0, _) => self::secs(secs),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h:02}h"),
    }
}

/// `269722` → `269,722`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `500`, `2500`, `12k`, `12.5k`: an iteration on an axis that reaches `axis_max`, as the
/// dashboard's charts and the plots label them. Thousands from an axis of 10,000 on, so that one
/// axis writes all its labels alike, to a tenth, with the decimal only where it is not zero
/// (`12.5k` is not rounded to `13k`, and a merged point's `63,968.5` reads `64k`).
pub fn iteration_label(v: f64, axis_max: f64) -> String {
    if axis_max.abs() < 10_000.0 {
        return format!("{v:.0}");
    }
    thousands(v)
}

/// `950`, `5k`, `12.3k`: a count of iterations in a narrow column (the table's `12.3k/64k`),
/// thousands from 1,000 on, written as an axis writes them.
pub fn count_short(n: u64) -> String {
    if n < 1_000 {
        return n.to_string();
    }
    thousands(n as f64)
}

/// `v` in thousands to a tenth, the decimal only where it is not zero: `12.5k`, `64k`, `0`.
fn thousands(v: f64) -> String {
    let tenths = (v / 100.0).round();
    match tenths {
        0.0 => "0".into(),
        t if t % 10.0 == 0.0 => format!("{:.0}k", t / 10.0),
        t => format!("{:.1}k", t / 10.0),
    }
}

/// `133 KiB`, `512 MiB`, `1.25 GiB`.
pub fn bytes(b: u64) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.2} GiB")
    } else if b >= 1 << 20 {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", b as f64 / 1024.0)
    }
}

/// `name` in at most `width` characters: a long one loses its middle, not its end, since the
/// names of runs started in the same second differ only at their end (`2026112…1142-resnet8-2`).
pub fn elide_middle(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_string();
    }
    if width < 3 {
        return chars[..width].iter().collect();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_are_thousands_only_on_a_long_axis() {
        assert_eq!(iteration_label(2500.0, 5000.0), "2500");
        assert_eq!(iteration_label(0.0, 64_000.0), "0");
        assert_eq!(iteration_label(32_000.0, 64_000.0), "32k");
        assert_eq!(iteration_label(12_500.0, 64_000.0), "12.5k");
        assert_eq!(iteration_label(64_000.0, 64_000.0), "64k");
        assert_eq!(iteration_label(63_968.5, 63_968.5), "64k");
        assert_eq!(iteration_label(1.0, 64_000.0), "0");
    }

    #[test]
    fn counts_are_short_from_a_thousand_on() {
        assert_eq!(count_short(950), "950");
        assert_eq!(count_short(5_000), "5k");
        assert_eq!(count_short(12_345), "12.3k");
        assert_eq!(count_short(12_960), "13k", "rounded as an axis label is, not `13.0k`");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(12.4), "12s");
        assert_eq!(secs(245.0), "4m05s");
        assert_eq!(secs(3723.0), "1h02m03s");
        assert_eq!(secs(f64::NAN), "-");
        assert_eq!(secs(-1.0), "-");
    }

    #[test]
    fn time_left_drops_what_an_estimate_cannot_know() {
        assert_eq!(eta(245.0), "4m05s");
        assert_eq!(eta(4.0 * 3600.0 + 28.0 * 60.0 + 20.0), "4h28m");
        assert_eq!(eta(60.0 * 3600.0 + 45.0 * 60.0 + 35.0), "2d12h");
        assert_eq!(eta(f64::INFINITY), "-");
        assert!([1.0, 3599.0, 86_399.0, 99.0 * 86_400.0].iter().all(|&s| eta(s).chars().count() <= 6));
    }

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(269_722), "269,722");
        assert_eq!(group_digits(1_727_962), "1,727,962");
    }

    #[test]
    fn sizes_switch_to_gib_at_one_gib() {
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(135_813), "133 KiB");
        assert_eq!(bytes(5 << 29), "2.50 GiB");
    }

    #[test]
    fn long_names_lose_their_middle_and_keep_their_end() {
        assert_eq!(elide_middle("resnet20-seed1", 22), "resnet20-seed1");
        let short = elide_middle("20261129-111142-resnet8-2", 22);
        assert_eq!(short, "2026112…1142-resnet8-2");
        assert_eq!(short.chars().count(), 22);
        assert_ne!(short, elide_middle("20261129-111142-resnet8", 22), "the end tells them apart");
        assert_eq!(elide_middle("resnet", 2), "re");
    }
}
