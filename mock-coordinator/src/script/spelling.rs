//! `job_id_spelling`: how the coordinator writes the UUIDs of its job ids.
//!
//! protocol.md: every `job_id` the agent sends back is the exact string the
//! coordinator sent. A coordinator that writes upper-case or braced UUIDs
//! must see those very strings again; an agent that parses the id and
//! answers in canonical form leaves every such job unanswered (its frames
//! name no job this coordinator sent).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The spelling of every job id the script issues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobIdSpelling {
    /// `6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f`.
    #[default]
    Canonical,
    /// `6F1C2D7E-3B1A-4C5D-8E9F-0A1B2C3D4E5F`.
    Upper,
    /// `{6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f}`.
    Braced,
    /// Canonical, upper-case and braced in turn, by arrival index.
    Mixed,
}

impl JobIdSpelling {
    /// `id` written in this spelling; `arrival` picks the turn of `mixed`.
    pub fn spell(self, id: Uuid, arrival: u64) -> String {
        let spelling = match self {
            JobIdSpelling::Mixed => [Self::Canonical, Self::Upper, Self::Braced][(arrival % 3) as usize],
            other => other,
        };
        match spelling {
            JobIdSpelling::Upper => id.hyphenated().to_string().to_uppercase(),
            JobIdSpelling::Braced => id.braced().to_string(),
            _ => id.hyphenated().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves each spelling, and that `mixed` takes them in turn.
    #[test]
    fn spellings() {
        let id = Uuid::from_u128(0x6f1c_2d7e_3b1a_4c5d_8e9f_0a1b_2c3d_4e5f);
        let canonical = "6f1c2d7e-3b1a-4c5d-8e9f-0a1b2c3d4e5f";
        assert_eq!(JobIdSpelling::Canonical.spell(id, 0), canonical);
        assert_eq!(JobIdSpelling::Upper.spell(id, 0), canonical.to_uppercase());
        assert_eq!(JobIdSpelling::Braced.spell(id, 0), format!("{{{canonical}}}"));
        let mixed: Vec<String> = (0..4).map(|a| JobIdSpelling::Mixed.spell(id, a)).collect();
        assert_eq!(
            mixed,
            [
                canonical.to_owned(),
                canonical.to_uppercase(),
                format!("{{{canonical}}}"),
                canonical.to_owned()
            ]
        );
    }
}
