//! A sweep: a grid of runs (depths × seeds × other recipe options) in one folder, one run
//! directory per cell with its full `config.json` written up front, and `sweep.json` listing the
//! cells. Any executor (the local queue, a Slurm array) starts cells by their index; starting one
//! is idempotent (see `executor::cell`), so a sweep can be run again or requeued at will.
//!
//! A plain folder of runs (a `--runs-dir`) is read the same way, one member per run directory,
//! so the table of runs works on both.

use crate::config::setting::{self as fields, Field, Shown};
use crate::config::{ConfigError, Depth, RunConfig, Setting, Shortcut};
use crate::rundir::{self, CONFIG_NAME};
use crate::schema::{FormerName, Refusal, Schema, Stamp, Version};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const SWEEP_FILE: &str = "sweep.json";
/// The schema `sweep.json` is stamped with; sweeps of earlier builds said "resnet-tui/sweep 1".
pub const SWEEP: Schema = Schema {
    name: "resnet-tui/sweep",
    version: Version::new(1, 0),
    former: &[FormerName { name: "resnet-tui/sweep 1", version: Some(Version::new(1, 0)) }],
};

/// One swept field and its values, each the settings it makes: one setting, or for a network
/// (`--nets`) its depth and shortcut. `sweep.json` writes a value as its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "AxisText", try_from = "AxisText")]
pub struct Axis {
    pub field: String,
    pub values: Vec<Vec<Setting>>,
}

/// An axis as `sweep.json` writes it: the field and its values as text.
#[derive(Serialize, Deserialize)]
struct AxisText {
    field: String,
    values: Vec<String>,
}

/// The axis of whole networks (`--nets plain56,resnet56`): each value sets the depth and the
/// shortcut together, so a sweep can list networks in the order its cells should start.
pub const NET_AXIS: &str = "net";

impl Axis {
    /// `field` swept over `values`.
    pub fn of<T: Shown>(field: &'static Field<T>, values: impl IntoIterator<Item = T>) -> Axis {
        Axis { field: field.name.into(), values: values.into_iter().map(|v| vec![field.to(v)]).collect() }
    }

    /// The networks of `--nets`, in the order their cells start.
    pub fn nets(nets: &[Net]) -> Axis {
        Axis { field: NET_AXIS.into(), values: nets.iter().map(|n| n.settings()).collect() }
    }

    /// `FIELD=V1,V2`, as `--vary` takes it: any field of a run's config but those other
    /// options sweep.
    pub fn vary(text: &str) -> Result<Axis, String> {
        let (field, values) = text.split_once('=').ok_or("expected FIELD=V1,V2")?;
        let field = field.trim();
        if [fields::DEPTH.name, fields::SEED.name, NET_AXIS].contains(&field) {
            return Err(format!("{field}: sweep it with --depths, --nets or --seeds"));
        }
        let values: Vec<&str> = values.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Err(format!("{field}: no values"));
        }
        Axis::read(field, &values)
    }

    /// `field` swept over the values `texts` read as.
    pub fn read(field: &str, texts: &[&str]) -> Result<Axis, String> {
        let values = texts.iter().map(|text| Axis::read_value(field, text)).collect::<Result<_, _>>()?;
        Ok(Axis { field: field.to_string(), values })
    }

    fn read_value(field: &str, text: &str) -> Result<Vec<Setting>, String> {
        if field == NET_AXIS {
            let net = text.parse::<Net>().map_err(|why| format!("net {text}: {why}"))?;
            return Ok(net.settings());
        }
        Setting::new(field, text).map(|s| vec![s]).map_err(|e| e.to_string())
    }

    /// One value as `sweep.json` writes it: a network by its name, else the setting's value.
    fn value_text(&self, value: &[Setting]) -> String {
        match Net::of(value) {
            Some(net) if self.field == NET_AXIS => net.to_string(),
            _ => value.iter().map(Setting::value_text).collect::<Vec<_>>().join(","),
        }
    }
}

impl From<Axis> for AxisText {
    fn from(axis: Axis) -> AxisText {
        let values = axis.values.iter().map(|v| axis.value_text(v)).collect();
        AxisText { field: axis.field, values }
    }
}

impl TryFrom<AxisText> for Axis {
    type Error = String;
    fn try_from(text: AxisText) -> Result<Axis, String> {
        Axis::read(&text.field, &text.values.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// A network of `--nets`: `plain56` (no shortcuts), `resnet56` (option A), `resnet56b` (B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    pub depth: Depth,
    pub shortcut: Shortcut,
}

impl Net {
    fn settings(self) -> Vec<Setting> {
        vec![fields::DEPTH.to(self.depth), fields::SHORTCUT.to(self.shortcut)]
    }

    /// The network a value of the net axis sets.
    fn of(settings: &[Setting]) -> Option<Net> {
        let depth = settings.iter().find_map(|s| s.value(&fields::DEPTH))?;
        let shortcut = settings.iter().find_map(|s| s.value(&fields::SHORTCUT))?;
        Some(Net { depth: *depth, shortcut: *shortcut })
    }
}

impl FromStr for Net {
    type Err = String;
    fn from_str(net: &str) -> Result<Net, String> {
        let expected = || "expected plainN, resnetN or resnetNb, e.g. plain56, resnet110".to_string();
        let lower = net.trim().to_ascii_lowercase().replace('-', "");
        let (rest, family) = match lower.strip_prefix("plain") {
            Some(rest) => (rest, Shortcut::None),
            None => (lower.strip_prefix("resnet").ok_or_else(expected)?, Shortcut::A),
        };
        let (digits, shortcut) = match rest.strip_suffix('b') {
            Some(digits) if family == Shortcut::A => (digits, Shortcut::B),
            Some(_) => return Err(expected()),
            None => (rest, family),
        };
        let depth = digits.parse::<u32>().map_err(|_| expected())?;
        Ok(Net { depth: Depth::new(depth).map_err(|e| e.to_string())?, shortcut })
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.shortcut {
            Shortcut::None => write!(f, "plain{}", self.depth),
            Shortcut::A => write!(f, "resnet{}", self.depth),
            Shortcut::B => write!(f, "resnet{}b", self.depth),
        }
    }
}

/// One cell of the grid: its run directory's name and the settings that make it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub name: String,
    pub settings: Vec<Setting>,
}

/// What `sweep.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    #[serde(flatten)]
    pub stamp: Stamp,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{}: cannot write: {}", .0.display(), .1)]
    Write(PathBuf, std::io::Error),
    #[error("{}: not a sweep or a folder of runs", .0.display())]
    NotASweep(PathBuf),
    #[error("{}: {SWEEP_FILE} is damaged: {}", .0.display(), .1)]
    Damaged(PathBuf, String),
    #[error("{}: {SWEEP_FILE} is version {}, newer than this build reads ({}.x)", .0.display(), .1, SWEEP.version.major)]
    Newer(PathBuf, String),
    #[error("{}: is already a sweep with other cells; choose another folder", .0.display())]
    Different(PathBuf),
    #[error("cell {0}: {1}")]
    Config(String, ConfigError),
    #[error("{0}")]
    Axis(String),
    #[error("{}: no cell {which} (the sweep has {count})", .dir.display())]
    NoCell { dir: PathBuf, which: String, count: usize },
    #[error(transparent)]
    RunDir(#[from] rundir::RunDirError),
}

impl Sweep {
    /// The grid of `axes` (the first varies slowest), each cell named after its values.
    pub fn grid(axes: Vec<Axis>) -> Result<Sweep, SweepError> {
        for axis in &axes {
            if axis.values.is_empty() {
                return Err(SweepError::Axis(format!("{}: no values to sweep", axis.field)));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(v) = axis.values.iter().map(|v| axis.value_text(v)).find(|v| !seen.insert(v.clone())) {
                return Err(SweepError::Axis(format!("{}: value {v} is given twice", axis.field)));
            }
        }
        let mut cells = vec![Vec::<Setting>::new()];
        for axis in &axes {
            cells = cells
                .into_iter()
                .flat_map(|c| axis.values.iter().map(move |value| [c.as_slice(), value].concat()))
                .collect();
        }
        let cells = cells.into_iter().map(|settings| Cell { name: cell_name(&settings), settings }).collect();
        Ok(Sweep { stamp: SWEEP.stamp(), axes, cells })
    }

    /// Writes the sweep into `dir`: `sweep.json` and every cell's run directory with the config
    /// `config_of` gives it. Creating the same sweep again changes nothing; another one in the
    /// same folder is refused.
    pub fn create(
        &self,
        dir: &Path,
        config_of: impl Fn(&Cell) -> Result<RunConfig, ConfigError>,
    ) -> Result<(), SweepError> {
        let configs = self
            .cells
            .iter()
            .map(|c| config_of(c).map_err(|e| SweepError::Config(c.name.clone(), e)))
            .collect::<Result<Vec<_>, _>>()?;
        if dir.join(SWEEP_FILE).exists() {
            let existing = Sweep::load(dir)?;
            let same_configs = self.cells.iter().zip(&configs).all(|(c, config)| {
                rundir::read_config(&dir.join(&c.name)).is_ok_and(|stored| same_recipe(&stored, config))
            });
            if existing.cells != self.cells || !same_configs {
                return Err(SweepError::Different(dir.to_path_buf()));
            }
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| SweepError::Write(dir.to_path_buf(), e))?;
        for (cell, config) in self.cells.iter().zip(&configs) {
            rundir::prepare(&dir.join(&cell.name), config)?;
        }
        // Last: a folder with sweep.json has all its cells.
        let json = serde_json::to_vec_pretty(self).expect("a sweep serialises");
        let path = dir.join(SWEEP_FILE);
        crate::atomic::write(&path, &json).map_err(|e| SweepError::Write(path, e))
    }

    pub fn load(dir: &Path) -> Result<Sweep, SweepError> {
        let path = dir.join(SWEEP_FILE);
        let text = std::fs::read_to_string(&path).map_err(|_| SweepError::NotASweep(dir.to_path_buf()))?;
        let sweep: Sweep =
            serde_json::from_str(&text).map_err(|e| SweepError::Damaged(dir.to_path_buf(), e.to_string()))?;
        match SWEEP.check(&sweep.stamp) {
            Ok(_) => {}
            Err(Refusal::Foreign) => {
                return Err(SweepError::Damaged(dir.to_path_buf(), format!("unknown schema {:?}", sweep.stamp.schema)));
            }
            Err(Refusal::Newer(version)) => return Err(SweepError::Newer(dir.to_path_buf(), version)),
        }
        Ok(sweep)
    }

    /// The cell an executor was given: its index in the grid (a Slurm array task's id) or its name.
    pub fn cell(&self, dir: &Path, which: &str) -> Result<&Cell, SweepError> {
        let found = match which.parse::<usize>() {
            Ok(i) => self.cells.get(i),
            Err(_) => self.cells.iter().find(|c| c.name == which),
        };
        found.ok_or_else(|| SweepError::NoCell {
            dir: dir.to_path_buf(),
            which: which.to_string(),
            count: self.cells.len(),
        })
    }
}

/// `resnet20-seed1`, `resnet20-seed1-lr0.05`: depth first, then the other settings.
fn cell_name(settings: &[Setting]) -> String {
    let mut parts = Vec::new();
    let depth = settings.iter().find_map(|s| s.value(&fields::DEPTH));
    let shortcut = settings.iter().find_map(|s| s.value(&fields::SHORTCUT));
    // With a depth, the shortcut names the family: `plain56` for none, `resnet56` for the
    // default a (`resnet56-shortcutb` for b).
    let family_named = |s: &Setting| depth.is_some() && s.sets(&fields::SHORTCUT) && shortcut != Some(&Shortcut::B);
    if let Some(d) = depth {
        parts.push(format!("{}{d}", if shortcut == Some(&Shortcut::None) { "plain" } else { "resnet" }));
    }
    for setting in settings.iter().filter(|s| !s.sets(&fields::DEPTH) && !family_named(s)) {
        let clean: String = format!("{}{}", setting.field(), setting.value_text())
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
            .collect();
        parts.push(clean);
    }
    if parts.is_empty() { "run".into() } else { parts.join("-") }
}

/// One run the table follows: where it is and which row it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub name: String,
    pub dir: PathBuf,
    /// The settings that decide its row: the swept ones but the seed (a sweep), or the depth
    /// and what differs from the paper's architecture (a folder of runs).
    pub group: Vec<(String, String)>,
    pub seed: Option<String>,
}

/// The runs of a sweep folder (in grid order), or of a plain folder of runs (by name).
pub fn members(dir: &Path) -> Result<Vec<Member>, SweepError> {
    if dir.join(SWEEP_FILE).exists() {
        let sweep = Sweep::load(dir)?;
        return Ok(sweep
            .cells
            .into_iter()
            .map(|c| Member {
                dir: dir.join(&c.name),
                seed: c.settings.iter().find(|s| s.sets(&fields::SEED)).map(Setting::value_text),
                group: c
                    .settings
                    .iter()
                    .filter(|s| !s.sets(&fields::SEED))
                    .map(|s| (s.field().to_string(), s.value_text()))
                    .collect(),
                name: c.name,
            })
            .collect());
    }
    let entries = std::fs::read_dir(dir).map_err(|_| SweepError::NotASweep(dir.to_path_buf()))?;
    let mut runs: Vec<Member> = entries
        .flatten()
        .filter(|e| e.path().join(CONFIG_NAME).is_file())
        .filter_map(|e| {
            let config = rundir::read_config(&e.path()).ok()?;
            let mut group = vec![("depth".to_string(), config.depth.to_string())];
            if config.shortcut != crate::config::Shortcut::A {
                let shortcut = serde_json::to_value(config.shortcut).ok()?.as_str()?.to_string();
                group.push(("shortcut".into(), shortcut));
            }
            if config.precision != crate::config::Precision::Fp32 {
                group.push(("precision".into(), "bf16".into()));
            }
            Some(Member {
                name: e.file_name().to_string_lossy().into_owned(),
                dir: e.path(),
                group,
                seed: Some(config.seed.to_string()),
            })
        })
        .collect();
    if runs.is_empty() {
        return Err(SweepError::NotASweep(dir.to_path_buf()));
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(runs)
}

/// Whether a cell's stored config is the recipe `prepared` asks for. A cell that has started
/// records what `--precision auto` chose on its machine: that choice is the cell's, not a
/// different recipe.
fn same_recipe(stored: &RunConfig, prepared: &RunConfig) -> bool {
    let mut stored = stored.clone();
    if stored.precision_auto && prepared.precision_auto {
        stored.precision = prepared.precision;
        stored.precision_why.clone_from(&prepared.precision_why);
    }
    stored == *prepared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes(list: &[(&str, &[&str])]) -> Vec<Axis> {
        list.iter().map(|(f, v)| Axis::read(f, v).unwrap()).collect()
    }

    fn config_of(cell: &Cell) -> Result<RunConfig, ConfigError> {
        let mut c: RunConfig = serde_json::from_str(include_str!("../tests/data/config.json")).unwrap();
        for setting in &cell.settings {
            setting.apply(&mut c)?;
        }
        Ok(c)
    }

    #[test]
    fn the_grid_has_one_named_cell_per_combination_first_axis_slowest() {
        let sweep = Sweep::grid(axes(&[("depth", &["20", "32"]), ("seed", &["1", "2"]), ("lr", &["0.1"])])).unwrap();
        let names: Vec<&str> = sweep.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["resnet20-seed1-lr0.1", "resnet20-seed2-lr0.1", "resnet32-seed1-lr0.1", "resnet32-seed2-lr0.1"]
        );
        assert_eq!(sweep.cells[2].settings[1], fields::SEED.to(1));
        let err = Sweep::grid(axes(&[("seed", &["1", "1"])])).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }

    #[test]
    fn a_net_axis_sets_depth_and_shortcut_together_in_the_order_given() {
        let sweep = Sweep::grid(axes(&[("net", &["plain56", "resnet32", "ResNet-110b"]), ("seed", &["1"])])).unwrap();
        let names: Vec<&str> = sweep.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["plain56-seed1", "resnet32-seed1", "resnet110-shortcutb-seed1"]);
        let text = serde_json::to_value(&sweep.axes[0]).unwrap();
        assert_eq!(text["values"], serde_json::json!(["plain56", "resnet32", "resnet110b"]));
        let depth = Depth::new(56).unwrap();
        let plain56 = [fields::DEPTH.to(depth), fields::SHORTCUT.to(Shortcut::None), fields::SEED.to(1)];
        assert_eq!(sweep.cells[0].settings, plain56);
        for bad in ["plain56b", "resnet", "vgg16", "plain5x"] {
            let err = Axis::read("net", &[bad]).unwrap_err();
            assert!(err.contains(&format!("net {bad}: expected plainN")), "{err}");
        }
        assert!(Axis::read("net", &["resnet21"]).unwrap_err().contains("6n+2"));
    }

    #[test]
    fn creating_writes_every_cells_config_and_again_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        let sweep = Sweep::grid(axes(&[("depth", &["20", "32"]), ("seed", &["1", "2"])])).unwrap();
        sweep.create(&dir, config_of).unwrap();
        let c = rundir::read_config(&dir.join("resnet32-seed2")).unwrap();
        assert_eq!((c.depth.get(), c.seed), (32, 2));
        assert_eq!(Sweep::load(&dir).unwrap(), sweep);
        sweep.create(&dir, config_of).unwrap();
        let other = Sweep::grid(axes(&[("depth", &["20"]), ("seed", &["1", "2"])])).unwrap();
        let err = other.create(&dir, config_of).unwrap_err().to_string();
        assert!(err.contains("already a sweep with other cells"), "{err}");
        assert_eq!(sweep.cell(&dir, "3").unwrap().name, "resnet32-seed2");
        assert_eq!(sweep.cell(&dir, "resnet20-seed2").unwrap().name, "resnet20-seed2");
        let err = sweep.cell(&dir, "4").unwrap_err().to_string();
        assert!(err.contains("no cell 4 (the sweep has 4)"), "{err}");
    }

    #[test]
    fn an_earlier_builds_sweep_file_loads_and_a_newer_major_one_is_refused_by_its_version() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        let sweep = Sweep::grid(axes(&[("depth", &["20"]), ("seed", &["1", "2"])])).unwrap();
        sweep.create(&dir, config_of).unwrap();
        let restamp = |schema: &str, version: Option<&str>| {
            let mut json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(SWEEP_FILE)).unwrap()).unwrap();
            json["schema"] = schema.into();
            match version {
                Some(v) => json["version"] = v.into(),
                None => drop(json.as_object_mut().unwrap().remove("version")),
            }
            std::fs::write(dir.join(SWEEP_FILE), serde_json::to_vec(&json).unwrap()).unwrap();
        };
        restamp("resnet-tui/sweep 1", None);
        assert_eq!(Sweep::load(&dir).unwrap().cells, sweep.cells);
        sweep.create(&dir, config_of).unwrap();
        restamp("resnet-tui/sweep", Some("2.0"));
        let err = Sweep::load(&dir).unwrap_err().to_string();
        assert!(err.ends_with("sweep.json is version 2.0, newer than this build reads (1.x)"), "{err}");
        restamp("resnet-tui/runlog", Some("1.0"));
        assert!(Sweep::load(&dir).unwrap_err().to_string().contains("unknown schema \"resnet-tui/runlog\""));
    }

    #[test]
    fn members_of_a_sweep_are_grouped_without_the_seed_and_a_folder_of_runs_by_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("table");
        let sweep = Sweep::grid(axes(&[("depth", &["20", "32"]), ("seed", &["1", "2"])])).unwrap();
        sweep.create(&dir, config_of).unwrap();
        let m = members(&dir).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].group, vec![("depth".to_string(), "20".to_string())]);
        assert_eq!(m[1].seed.as_deref(), Some("2"));
        // The same cells seen as a plain folder of runs (no sweep.json).
        std::fs::remove_file(dir.join(SWEEP_FILE)).unwrap();
        let plain = members(&dir).unwrap();
        assert_eq!(
            plain.iter().map(|m| m.group.clone()).collect::<Vec<_>>(),
            m.iter().map(|m| m.group.clone()).collect::<Vec<_>>()
        );
        assert!(members(tmp.path().join("nothing").as_path()).is_err());
    }
}
