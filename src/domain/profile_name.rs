use serde::Serialize;
use std::fmt;

/// The name of a launch profile (`[[profiles]]`): what a launch link's
/// `?profile=` and the API give, and what a VM records. Lower-case letters,
/// digits, `-` and `_`, 1 to 32 of them, so it is safe in a URL, a form
/// and a log line as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProfileName(String);

impl ProfileName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        let plain = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if name.is_empty() || name.len() > 32 || !plain {
            return Err(format!(
                "{name:?} is not a profile name: use 1 to 32 lower-case letters, digits, - or _"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ProfileName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

super::text_column::stored_as_text!(ProfileName, ProfileName::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_name_is_short_and_plain() {
        assert_eq!(ProfileName::parse(" gpu ").unwrap().as_str(), "gpu");
        ProfileName::parse("large-2_x").unwrap();
        for bad in ["", "GPU", "a b", "a/b", "<x>", &"a".repeat(33)] {
            assert!(ProfileName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
