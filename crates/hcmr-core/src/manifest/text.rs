//! The manifest's text fields (docs/transport.md section 3), each with its byte limit and the
//! code format's text rule: no control or bidirectional-control characters
//! ([`crate::identity::refused_character`]), and something visible.

use super::ManifestError;

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Most bytes (UTF-8) of the text.
            pub const MAX_BYTES: usize = $max;

            /// Checks the text.
            ///
            /// # Errors
            /// [`ManifestError::Field`] when it is longer than [`Self::MAX_BYTES`] bytes or
            /// shows nothing; [`ManifestError::TextCharacter`] for a control or
            /// bidirectional-control character.
            pub fn new(s: impl Into<String>) -> Result<Self, ManifestError> {
                let s = s.into();
                check(&s, $field, $max)?;
                Ok($name(s))
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

text_field!(
    /// The vehicle: a plate (`川R·12345`) or train and carriage (`G1234/05`), 1 to 16 bytes.
    Vehicle, "vehicle", 16
);
text_field!(
    /// The destination place (employer or reception station), 1 to 24 bytes.
    Place, "place", 24
);
text_field!(
    /// The escort's masked name ([`crate::identity::mask_name`]), 1 to 12 bytes.
    Escort, "escort", 12
);

fn check(s: &str, field: &'static str, max: usize) -> Result<(), ManifestError> {
    check_text(s, max, false).map_err(|fault| match fault {
        TextFault::TooLong(n) => {
            ManifestError::field(field, format!("has {n} bytes; at most {max}"))
        }
        TextFault::Character { ch, position } => ManifestError::TextCharacter {
            field,
            ch,
            position,
        },
        TextFault::Invisible => ManifestError::field(field, "has no visible character"),
    })
}

/// Why a text breaks the rule of [`check_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextFault {
    /// More bytes (UTF-8) than allowed: this many.
    TooLong(usize),
    /// A control or bidirectional-control character at `position` (counting characters from 1).
    Character { ch: char, position: usize },
    /// Nothing visible (and not empty, or empty where a text is required).
    Invisible,
}

/// The text rule shared by manifests and the trip records (docs/transport.md sections 3 and 6):
/// at most `max` bytes, no control or bidirectional-control character, something visible; an
/// empty text passes only when `may_be_empty`.
pub(crate) fn check_text(s: &str, max: usize, may_be_empty: bool) -> Result<(), TextFault> {
    if s.len() > max {
        return Err(TextFault::TooLong(s.len()));
    }
    if let Some((position, ch)) = crate::identity::refused_character(s) {
        return Err(TextFault::Character { ch, position });
    }
    if s.is_empty() && may_be_empty {
        return Ok(());
    }
    if s.chars()
        .all(|c| crate::identity::is_zero_width(c) || c.is_whitespace())
    {
        return Err(TextFault::Invisible);
    }
    Ok(())
}
