//! How every file of ours says what it holds: a schema's name and its version, "major.minor". The
//! run log's header, a sweep's `sweep.json` and a checkpoint's metadata all carry the same two
//! fields, `schema` and `version`, and are read by the same rule:
//!
//! - a minor version only adds (a field with a default, an event kind or a line a reader skips), so
//!   a reader takes any minor version of its major, older or newer;
//! - a newer major is refused with a message naming it; another name is not our file.
//!
//! Files written before the shared scheme named themselves another way ("resnet-tui/sweep 1", a
//! checkpoint's `format: resnet-tui-checkpoint` and `version: "1"`); each schema lists its former
//! names, so that every file ever shipped still reads. The other way does not hold: builds from
//! before the shared scheme refuse what this one writes (a checkpoint's `format`, a sweep's name).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A schema's version: what a reader compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }

    /// "1.6"; a lone "1" (how checkpoints wrote their version) is 1.0.
    pub fn parse(text: &str) -> Option<Version> {
        let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
        Some(Version { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A name an older build wrote for a schema, and the version such a file holds when it names
/// none itself.
pub struct FormerName {
    pub name: &'static str,
    pub version: Option<Version>,
}

/// One kind of file: its name, the version this build writes, and the names older builds used.
pub struct Schema {
    pub name: &'static str,
    pub version: Version,
    pub former: &'static [FormerName],
}

/// What a file says it is: the two fields every file of ours carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub schema: String,
    /// Absent only in files of a former name whose version the name implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Why a file is not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not this schema: another file, or a damaged one.
    Foreign,
    /// Written by a newer build with a layout this one cannot read; the version it names.
    Newer(String),
}

impl Schema {
    /// The stamp this build writes.
    pub fn stamp(&self) -> Stamp {
        Stamp { schema: self.name.to_string(), version: Some(self.version.to_string()) }
    }

    /// The version a file holds, if this build reads it.
    pub fn check(&self, stamp: &Stamp) -> Result<Version, Refusal> {
        let implied = if stamp.schema == self.name {
            None
        } else {
            let former = self.former.iter().find(|f| f.name == stamp.schema).ok_or(Refusal::Foreign)?;
            former.version
        };
        let version = match (&stamp.version, implied) {
            (Some(text), _) => Version::parse(text).ok_or(Refusal::Foreign)?,
            (None, Some(version)) => version,
            (None, None) => return Err(Refusal::Foreign),
        };
        match version.major.cmp(&self.version.major) {
            std::cmp::Ordering::Equal => Ok(version),
            std::cmp::Ordering::Greater => Err(Refusal::Newer(version.to_string())),
            std::cmp::Ordering::Less => Err(Refusal::Foreign),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: Schema = Schema {
        name: "resnet-tui/thing",
        version: Version::new(2, 3),
        former: &[
            FormerName { name: "resnet-tui/thing 2", version: Some(Version::new(2, 0)) },
            FormerName { name: "resnet-tui-thing", version: None },
        ],
    };

    fn stamp(schema: &str, version: Option<&str>) -> Stamp {
        Stamp { schema: schema.into(), version: version.map(String::from) }
    }

    #[test]
    fn every_minor_version_of_the_major_reads_and_a_newer_major_is_refused_by_its_version() {
        assert_eq!(FILE.check(&stamp("resnet-tui/thing", Some("2.0"))), Ok(Version::new(2, 0)));
        assert_eq!(FILE.check(&stamp("resnet-tui/thing", Some("2.9"))), Ok(Version::new(2, 9)));
        assert_eq!(FILE.check(&stamp("resnet-tui/thing", Some("3.0"))), Err(Refusal::Newer("3.0".into())));
        assert_eq!(FILE.check(&stamp("resnet-tui/thing", Some("1.4"))), Err(Refusal::Foreign));
        assert_eq!(FILE.check(&stamp("resnet-tui/thing", Some("two"))), Err(Refusal::Foreign));
        assert_eq!(FILE.check(&stamp("resnet-tui/thing", None)), Err(Refusal::Foreign));
        assert_eq!(FILE.check(&stamp("resnet-tui/other", Some("2.3"))), Err(Refusal::Foreign));
    }

    #[test]
    fn a_former_name_reads_with_the_version_it_implies_or_the_one_it_gives() {
        assert_eq!(FILE.check(&stamp("resnet-tui/thing 2", None)), Ok(Version::new(2, 0)));
        assert_eq!(FILE.check(&stamp("resnet-tui-thing", Some("2"))), Ok(Version::new(2, 0)));
        assert_eq!(FILE.check(&stamp("resnet-tui-thing", Some("3"))), Err(Refusal::Newer("3.0".into())));
        assert_eq!(FILE.check(&stamp("resnet-tui-thing", None)), Err(Refusal::Foreign));
    }

    #[test]
    fn this_build_writes_its_name_and_version_and_reads_what_it_writes() {
        let written = FILE.stamp();
        assert_eq!(written, stamp("resnet-tui/thing", Some("2.3")));
        assert_eq!(FILE.check(&written), Ok(FILE.version));
    }

    #[test]
    fn a_version_reads_as_major_dot_minor_and_a_lone_major_is_minor_zero() {
        assert_eq!(Version::parse("1.6"), Some(Version::new(1, 6)));
        assert_eq!(Version::parse("1"), Some(Version::new(1, 0)));
        assert_eq!(Version::parse("1.10").map(|v| v.to_string()).as_deref(), Some("1.10"));
        assert!(Version::new(1, 10) > Version::new(1, 9));
        assert_eq!(Version::parse("1.x"), None);
        assert_eq!(Version::parse(""), None);
    }
}
