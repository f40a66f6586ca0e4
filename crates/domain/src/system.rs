//! System messages: the lifecycle lines of a conversation.

use crate::ExtensionId;
use crate::phone::E164;
use serde::{Deserialize, Serialize};

/// What happened, in a form clients can act on; the message text says the
/// same for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum SystemAction {
    Created {
        actor_id: ExtensionId,
        name: String,
    },
    Renamed {
        actor_id: ExtensionId,
        name: String,
    },
    Added {
        actor_id: ExtensionId,
        extension_ids: Vec<ExtensionId>,
    },
    Removed {
        actor_id: ExtensionId,
        extension_ids: Vec<ExtensionId>,
    },
    Left {
        actor_id: ExtensionId,
    },
    /// An outside number texted STOP (or a variant): nothing more is texted
    /// to it from this business number.
    #[serde(rename = "opted_out")]
    OptedOut {
        number: E164,
        display: String,
    },
    /// It texted START (or a variant) and may be texted again.
    #[serde(rename = "opted_in")]
    OptedIn {
        number: E164,
        display: String,
    },
}

impl SystemAction {
    /// The sentence shown in the gray pill. `name_of` gives display names;
    /// they are written into the message when it is stored, so the line
    /// reads the same later even if someone is renamed.
    pub fn render(&self, name_of: impl Fn(ExtensionId) -> String) -> String {
        let list = |ids: &[ExtensionId]| {
            let names: Vec<String> = ids.iter().map(|&id| name_of(id)).collect();
            join_names(&names)
        };
        match self {
            Self::Created { actor_id, name } => {
                format!("{} created the group “{}”", name_of(*actor_id), name)
            }
            Self::Renamed { actor_id, name } => {
                format!("{} renamed the group to “{}”", name_of(*actor_id), name)
            }
            Self::Added {
                actor_id,
                extension_ids,
            } => format!("{} added {}", name_of(*actor_id), list(extension_ids)),
            Self::Removed {
                actor_id,
                extension_ids,
            } => format!("{} removed {}", name_of(*actor_id), list(extension_ids)),
            Self::Left { actor_id } => format!("{} left the group", name_of(*actor_id)),
            Self::OptedOut { display, .. } => format!(
                "{display} opted out of texts (STOP); nothing can be texted to them until they text START"
            ),
            Self::OptedIn { display, .. } => {
                format!("{display} opted back in to texts (START)")
            }
        }
    }
}

fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(id: ExtensionId) -> String {
        ["", "Alice", "Bob", "Carol"][id.0 as usize].to_owned()
    }

    #[test]
    fn sentences() {
        let a = ExtensionId(1);
        assert_eq!(
            SystemAction::Renamed {
                actor_id: a,
                name: "Sales".into()
            }
            .render(name),
            "Alice renamed the group to “Sales”"
        );
        assert_eq!(
            SystemAction::Added {
                actor_id: a,
                extension_ids: vec![ExtensionId(2), ExtensionId(3)]
            }
            .render(name),
            "Alice added Bob and Carol"
        );
        assert_eq!(
            SystemAction::Left { actor_id: a }.render(name),
            "Alice left the group"
        );
    }

    #[test]
    fn serializes_with_action_tag() {
        let json = serde_json::to_string(&SystemAction::Left {
            actor_id: ExtensionId(4),
        })
        .unwrap();
        assert_eq!(json, r#"{"action":"left","actor_id":4}"#);
    }
}
